package io.cracin.example.modifier.crac.jetty;

import static org.osgi.service.jakartars.runtime.JakartarsServiceRuntimeConstants.JAKARTA_RS_SERVICE_ENDPOINT;

import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

import org.crac.Context;
import org.crac.Core;
import org.crac.Resource;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.server.handler.ContextHandlerCollection;
import org.eclipse.jetty.servlet.ServletContextHandler;
import org.eclipse.jetty.servlet.ServletHolder;
import org.eclipse.osgitech.rest.annotations.ProvideRuntimeAdapter;
import org.eclipse.osgitech.rest.runtime.JerseyServiceRuntime;
import org.eclipse.osgitech.rest.runtime.WhiteboardServletContainer;
import org.glassfish.jersey.server.ResourceConfig;
import org.osgi.framework.BundleContext;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.ConfigurationPolicy;
import org.osgi.service.component.annotations.Deactivate;

import io.cracin.example.modifier.crac.CheckpointCreationComponent;

/**
 * A Jetty runtime adapter for the OSGi Technology Jakarta REST whiteboard
 * ({@code org.eclipse.osgitech.rest}) that owns its Jetty {@link Server}, so it
 * can take part in CRaC: the {@link Resource} below closes the listening
 * sockets before a checkpoint and reopens them after a restore, while the
 * (expensive) server, Jersey applications and JIT state stay alive.
 *
 * It replaces the bundle {@code org.eclipse.osgitech.rest.jetty} in app-crac
 * (blacklisted in app-crac.bndrun) and consumes the same configuration PID
 * {@code JakartarsWhiteboardComponent} ({@code jersey.port}, {@code jersey.host},
 * {@code jersey.context.path}).
 */
@ProvideRuntimeAdapter("jetty")
@Component(name = "JakartarsWhiteboardComponent", configurationPolicy = ConfigurationPolicy.REQUIRE)
public class CracJettyWhiteboardComponent {

    private final Map<String, ServletContextHandler> contexts = new ConcurrentHashMap<>();
    private final ContextHandlerCollection handlers = new ContextHandlerCollection();

    private volatile Server server;
    private JerseyServiceRuntime<WhiteboardServletContainer> runtime;
    private String contextPath = "/";

    /**
     * Registered with the global CRaC context. org.crac keeps only weak
     * references, so the component holds the strong one.
     */
    private final Resource cracResource = new Resource() {
        @Override
        public void beforeCheckpoint(Context<? extends Resource> context) throws Exception {
            Server s = server;
            if (s != null && s.isStarted()) {
                for (Connector c : s.getConnectors()) {
                    c.stop();
                }
                CheckpointCreationComponent.log("beforeCheckpoint: connectors stopped");
            }
        }

        @Override
        public void afterRestore(Context<? extends Resource> context) throws Exception {
            Server s = server;
            if (s != null && s.isStarted()) {
                for (Connector c : s.getConnectors()) {
                    c.start();
                }
                CheckpointCreationComponent.log("afterRestore: connectors started");
            }
        }
    };

    @Activate
    void activate(BundleContext context, Map<String, Object> props) throws Exception {
        int port = Integer.parseInt(String.valueOf(props.getOrDefault("jersey.port", "8080")));
        String host = (String) props.get("jersey.host");
        contextPath = normalize(String.valueOf(props.getOrDefault("jersey.context.path", "")));

        Server s = new Server();
        ServerConnector connector = new ServerConnector(s);
        connector.setPort(port);
        if (host != null && !host.isBlank()) {
            connector.setHost(host);
        }
        s.addConnector(connector);
        s.setHandler(handlers);
        s.start();
        server = s;

        runtime = new JerseyServiceRuntime<>(context, this::createContainer, this::destroyContainer);
        Map<String, Object> runtimeProps = new HashMap<>(props);
        String endpoint = "http://" + (host == null || host.isBlank() ? "localhost" : host) + ":" + port
                + ("/".equals(contextPath) ? "/" : contextPath + "/");
        runtimeProps.put(JAKARTA_RS_SERVICE_ENDPOINT, new String[] { endpoint });
        runtime.start(runtimeProps);

        Core.getGlobalContext().register(cracResource);
        CheckpointCreationComponent.log("jetty whiteboard started on " + endpoint + " (CRaC resource registered)");
    }

    @Deactivate
    void deactivate() throws Exception {
        if (runtime != null) {
            runtime.teardown(5, TimeUnit.SECONDS);
        }
        contexts.keySet().forEach(this::removeContext);
        Server s = server;
        server = null;
        if (s != null) {
            s.stop();
        }
    }

    /** Called by the whiteboard runtime for every Jakarta REST application base path. */
    private WhiteboardServletContainer createContainer(String path, ResourceConfig config) {
        WhiteboardServletContainer container = new WhiteboardServletContainer(config);
        ServletHolder holder = new ServletHolder(container);
        holder.setAsyncSupported(true);
        ServletContextHandler handler = new ServletContextHandler(ServletContextHandler.NO_SESSIONS);
        handler.setContextPath(contextFor(path));
        handler.addServlet(holder, "/*");
        contexts.put(path, handler);
        handlers.addHandler(handler);
        try {
            handler.start();
        } catch (Exception e) {
            throw new IllegalStateException("cannot start context " + path, e);
        }
        return container;
    }

    private void destroyContainer(String path, WhiteboardServletContainer container) {
        removeContext(path);
        container.dispose();
    }

    private void removeContext(String path) {
        ServletContextHandler handler = contexts.remove(path);
        if (handler != null) {
            handlers.removeHandler(handler);
            try {
                handler.stop();
            } catch (Exception e) {
                CheckpointCreationComponent.log("cannot stop context " + path + ": " + e);
            }
            handler.destroy();
        }
    }

    /** Joins the configured context path with an application base path ("/", "/app/*", ...). */
    private String contextFor(String appPath) {
        String p = appPath == null ? "" : appPath.replace("/*", "");
        p = normalize(p);
        if ("/".equals(p)) {
            return contextPath;
        }
        return "/".equals(contextPath) ? p : contextPath + p;
    }

    /** "" / "/" / "x/" / "/x" to "/" or "/x". */
    private static String normalize(String path) {
        String p = path.trim();
        while (p.endsWith("/")) {
            p = p.substring(0, p.length() - 1);
        }
        if (p.isEmpty()) {
            return "/";
        }
        return p.startsWith("/") ? p : "/" + p;
    }
}
