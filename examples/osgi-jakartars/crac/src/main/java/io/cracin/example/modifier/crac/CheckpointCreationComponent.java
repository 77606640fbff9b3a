package io.cracin.example.modifier.crac;

import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

import org.crac.CheckpointException;
import org.crac.Core;
import org.crac.RestoreException;
import org.osgi.framework.BundleContext;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Deactivate;

/**
 * Immediate component that triggers {@link Core#checkpointRestore()} once,
 * asynchronously, after a configurable delay (system property
 * {@code app.checkpoint.delay.ms}, default 10000; a negative value disables it).
 * With the whiteboard pattern there is no single "everything is up" event, so a
 * delay is the pragmatic trigger. On a JDK without CRaC the call throws and the
 * failure is logged; the application keeps serving.
 */
@Component(immediate = true)
public class CheckpointCreationComponent {

    static final String DELAY_PROPERTY = "app.checkpoint.delay.ms";
    static final long DEFAULT_DELAY_MS = 10_000L;

    private ScheduledExecutorService executor;

    @Activate
    void activate(BundleContext context) {
        String value = context.getProperty(DELAY_PROPERTY);
        long delay = DEFAULT_DELAY_MS;
        if (value != null && !value.isBlank()) {
            delay = Long.parseLong(value.trim());
        }
        if (delay < 0) {
            log("checkpoint disabled (" + DELAY_PROPERTY + "=" + delay + ")");
            return;
        }
        executor = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "cracin-checkpoint");
            t.setDaemon(true);
            return t;
        });
        log("checkpoint scheduled in " + delay + " ms");
        executor.schedule(this::checkpoint, delay, TimeUnit.MILLISECONDS);
    }

    @Deactivate
    void deactivate() {
        if (executor != null) {
            executor.shutdownNow();
        }
    }

    private void checkpoint() {
        log("calling checkpointRestore");
        try {
            Core.checkpointRestore();
            // everything after this line runs in the restored process
            log("checkpointRestore returned");
        } catch (CheckpointException | RestoreException | UnsupportedOperationException e) {
            log("checkpointRestore failed: " + e);
            Throwable[] suppressed = e.getSuppressed();
            for (Throwable s : suppressed) {
                log("  suppressed: " + s);
            }
        } finally {
            executor.shutdown();
        }
    }

    /** Logs to stdout with the "cracin-example: " prefix tests look for. */
    public static void log(String msg) {
        System.out.println("cracin-example: " + msg);
        System.out.flush();
    }
}
