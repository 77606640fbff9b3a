package io.cracin.example.launcher;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.reflect.InvocationTargetException;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;

/**
 * Entry point of app.jar and app-crac.jar: starts the OSGi framework and the application's
 * bundles from the jar itself, on any JDK from 17 on.
 *
 * <p>The jars are exported by bnd (bnd-export-maven-plugin), which resolves the bundles and
 * writes them to {@code jar/} with {@code launcher.properties} (bundle order, run properties,
 * extra system packages). bnd's own launcher (7.1) calls {@code Policy.setPolicy}, which JDK 24
 * and later reject since the Security Manager is gone; its fix (7.2) is not published for the
 * exporter. So the build replaces bnd's launcher with this one and keeps everything else bnd
 * exported.
 *
 * <p>This class uses JDK types only: the OSGi API must come from the framework's own class loader,
 * so the part that talks to the framework ({@link Boot}) is defined in that loader.
 */
public final class Main {
    static final String PROPERTIES = "launcher.properties";
    static final String BUNDLE_DIR = "jar/";

    private Main() {}

    public static void main(String[] args) throws Throwable {
        Path self = Path.of(Main.class.getProtectionDomain().getCodeSource().getLocation().toURI());
        Properties props = new Properties();
        List<String> bundles;
        // The framework's jar and its bundle cache live in a private temporary directory that
        // Boot's shutdown hook removes (as bnd's launcher did with its own).
        Path work = Files.createTempDirectory("osgi-jakartars-");
        Path framework = work.resolve("framework.jar");
        try (JarFile jar = new JarFile(self.toFile())) {
            JarEntry p = jar.getJarEntry(PROPERTIES);
            if (p == null) {
                throw new IllegalStateException(self + " has no " + PROPERTIES + ": not built by the example's build");
            }
            try (InputStream in = jar.getInputStream(p)) {
                props.load(in);
            }
            bundles = split(props.getProperty("launch.bundles", ""));
            // The framework is the one jar bnd exported beside the bundles (its -runfw).
            List<String> rest = new ArrayList<>();
            jar.stream()
                .map(JarEntry::getName)
                .filter(n -> n.startsWith(BUNDLE_DIR) && n.endsWith(".jar") && !bundles.contains(n))
                .forEach(rest::add);
            if (rest.size() != 1) {
                throw new IllegalStateException("expected one framework jar in " + self + " besides the bundles, found " + rest);
            }
            try (InputStream in = jar.getInputStream(jar.getJarEntry(rest.get(0)))) {
                Files.copy(in, framework);
            }
        } catch (IOException | RuntimeException e) {
            // Boot never ran, so no hook removes the directory
            Files.deleteIfExists(framework);
            Files.deleteIfExists(work);
            throw e;
        }
        FrameworkLoader loader = new FrameworkLoader(new URL[] {framework.toUri().toURL()});
        Class<?> boot = loader.loadClass(Boot.class.getName());
        try {
            boot.getMethod("run", Path.class, Path.class, Properties.class, List.class)
                .invoke(null, self, work, props, bundles);
        } catch (InvocationTargetException e) {
            // Boot's shutdown hook stops what was started and removes the directory
            e.getCause().printStackTrace();
            System.exit(1);
        }
    }

    static List<String> split(String list) {
        List<String> out = new ArrayList<>();
        for (String s : list.split(",")) {
            if (!s.isBlank()) {
                out.add(s.trim());
            }
        }
        return out;
    }

    /**
     * The framework's class loader. Its parent is the platform loader, so the OSGi API is the
     * framework's own copy, and {@link Boot} is defined here from this jar's bytes. The public
     * {@code addURL} is what Equinox calls to attach framework extension fragments (SPI Fly) to
     * its class path: {@code URLClassLoader.addURL} itself is protected in a module it cannot open.
     */
    static final class FrameworkLoader extends URLClassLoader {
        static {
            registerAsParallelCapable();
        }

        FrameworkLoader(URL[] urls) {
            super("osgi-framework", urls, ClassLoader.getPlatformClassLoader());
        }

        @Override
        public void addURL(URL url) {
            super.addURL(url);
        }

        @Override
        protected Class<?> findClass(String name) throws ClassNotFoundException {
            if (name.equals(Boot.class.getName())) {
                String resource = name.replace('.', '/') + ".class";
                try (InputStream in = Main.class.getClassLoader().getResourceAsStream(resource)) {
                    if (in == null) {
                        throw new ClassNotFoundException(name);
                    }
                    byte[] b = in.readAllBytes();
                    return defineClass(name, b, 0, b.length, Main.class.getProtectionDomain());
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            }
            return super.findClass(name);
        }
    }
}
