package io.cracin.example.modifier.app;

import java.io.IOException;
import java.util.Dictionary;
import java.util.Hashtable;

import org.osgi.framework.BundleContext;
import org.osgi.service.cm.Configuration;
import org.osgi.service.cm.ConfigurationAdmin;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;

/**
 * Creates the configuration of the Jakarta REST whiteboard runtime component
 * (PID {@code JakartarsWhiteboardComponent}, configuration policy REQUIRE) from
 * system properties, so the HTTP port can be chosen on the command line:
 *
 * <pre>java -Dorg.osgi.service.http.port=18080 -jar app.jar</pre>
 *
 * The whiteboard is served at the root context path, default port 8080.
 */
@Component(immediate = true)
public class WhiteboardConfigurer {

    static final String PID = "JakartarsWhiteboardComponent";
    static final String PORT_PROPERTY = "org.osgi.service.http.port";
    static final int DEFAULT_PORT = 8080;

    @Reference
    private ConfigurationAdmin configAdmin;

    @Activate
    void activate(BundleContext context) throws IOException {
        int port = DEFAULT_PORT;
        String value = context.getProperty(PORT_PROPERTY);
        if (value == null) {
            value = System.getProperty(PORT_PROPERTY);
        }
        if (value != null && !value.isBlank()) {
            port = Integer.parseInt(value.trim());
        }
        Dictionary<String, Object> props = new Hashtable<>();
        props.put("jersey.port", port);
        props.put("jersey.context.path", "");
        props.put("jersey.jakartars.whiteboard.name", "cracin");
        // "?" = multi-location: whichever runtime adapter bundle is installed may bind it
        Configuration config = configAdmin.getConfiguration(PID, "?");
        config.updateIfDifferent(props);
        System.out.println("cracin-example: whiteboard configured on port " + port);
    }
}
