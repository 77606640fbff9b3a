package io.cracin.example.launcher;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.ServiceLoader;
import java.util.concurrent.atomic.AtomicReference;
import java.util.jar.JarFile;
import java.util.stream.Stream;

import org.osgi.framework.Bundle;
import org.osgi.framework.BundleException;
import org.osgi.framework.Constants;
import org.osgi.framework.launch.Framework;
import org.osgi.framework.launch.FrameworkFactory;

/**
 * Starts the framework through the standard {@link FrameworkFactory}, installs the exported
 * bundles in bnd's order, starts them, and runs until the framework stops or the JVM is told to
 * stop (SIGTERM, Ctrl-C): then the framework is stopped cleanly and the temporary directory is
 * removed.
 *
 * <p>Defined in the framework's class loader by {@link Main}; it must not refer to {@link Main}
 * (not visible from that loader) and has no nested classes (only this class is defined there).
 */
public final class Boot {
    /** How long the shutdown hook waits for the bundles to stop. */
    private static final long STOP_TIMEOUT_MS = 30_000;

    private Boot() {}

    public static void run(Path self, Path work, Properties props, List<String> bundles) throws Exception {
        // First of all: whatever happens next, the JVM's exit stops the framework (once there is
        // one) and removes the temporary directory.
        AtomicReference<Framework> started = new AtomicReference<>();
        Runtime.getRuntime().addShutdownHook(new Thread(() -> stop(started.get(), work), "osgi-jakartars-stop"));
        // As with bnd's launcher, the framework gets bnd's -runproperties (a -D of the same name
        // on the command line wins) and not the JVM's other system properties.
        Map<String, String> config = new HashMap<>();
        for (String key : props.stringPropertyNames()) {
            if (key.startsWith("launch.")) {
                continue;
            }
            // also set as system properties: slf4j-simple reads its level there
            String value = System.getProperty(key);
            if (value == null) {
                value = props.getProperty(key);
                System.setProperty(key, value);
            }
            config.put(key, value);
        }
        String extra = props.getProperty("launch.system.packages", "").trim();
        if (!extra.isEmpty()) {
            config.put(Constants.FRAMEWORK_SYSTEMPACKAGES_EXTRA, extra);
        }
        config.put(Constants.FRAMEWORK_STORAGE, work.resolve("storage").toString());
        config.put(Constants.FRAMEWORK_STORAGE_CLEAN, Constants.FRAMEWORK_STORAGE_CLEAN_ONFIRSTINIT);

        FrameworkFactory factory = ServiceLoader.load(FrameworkFactory.class, Boot.class.getClassLoader())
            .findFirst()
            .orElseThrow(() -> new IllegalStateException("no OSGi framework (FrameworkFactory) in " + self));
        Framework framework = factory.newFramework(config);
        started.set(framework);
        framework.init();

        List<Bundle> installed = new ArrayList<>();
        try (JarFile jar = new JarFile(self.toFile())) {
            for (String entry : bundles) {
                try (InputStream in = jar.getInputStream(jar.getJarEntry(entry))) {
                    installed.add(framework.getBundleContext().installBundle(entry, in));
                }
            }
        }
        framework.start();
        for (Bundle b : installed) {
            if (b.getHeaders().get(Constants.FRAGMENT_HOST) != null) {
                continue;
            }
            try {
                // Lazy bundles stay lazy (bnd's launch.activation.eager=false).
                b.start(Bundle.START_ACTIVATION_POLICY);
            } catch (BundleException e) {
                System.err.println("osgi-jakartars launcher: " + b.getSymbolicName() + " did not start: " + e);
            }
        }
        framework.waitForStop(0);
        // Stopped from inside (the system bundle was stopped): the shutdown hook removes the
        // temporary directory, as on SIGTERM. The only place that deletes it, so no two threads
        // race over the same files.
        System.exit(0);
    }

    private static void stop(Framework framework, Path work) {
        if (framework != null) {
            try {
                framework.stop();
                framework.waitForStop(STOP_TIMEOUT_MS);
            } catch (Exception e) {
                System.err.println("osgi-jakartars launcher: stopping the framework: " + e);
            }
        }
        delete(work);
    }

    /** Removes {@code dir} and everything below it; a file that is already gone is no error. */
    private static void delete(Path dir) {
        // Equinox may still be writing its storage's file table as it closes: go again until
        // nothing is left (bounded).
        for (int attempt = 0; attempt < 5 && Files.exists(dir); attempt++) {
            List<Path> all = new ArrayList<>();
            try (Stream<Path> walk = Files.walk(dir)) {
                walk.forEach(all::add);
            } catch (IOException | RuntimeException e) {
                // a part vanished during the walk: delete what was seen, then walk again
            }
            all.sort(Comparator.reverseOrder());
            for (Path p : all) {
                try {
                    Files.deleteIfExists(p);
                } catch (IOException e) {
                    // not empty yet (a file appeared): the next attempt takes it
                }
            }
        }
    }
}
