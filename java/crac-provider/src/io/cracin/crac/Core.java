package io.cracin.crac;

import java.util.concurrent.CountDownLatch;

/**
 * cracin's coordination service: the {@code org.crac} API jar finds it through
 * {@code -Dorg.crac.Core.Compat=io.cracin.crac} and calls {@link #getGlobalContext()} and
 * {@link #checkpointRestore()} by reflection. The checkpoint itself is taken by cracin from
 * outside the JVM (CRIU); this class runs the Resources around it and talks to cracin through
 * files in the control directory (see {@code Control}).
 */
public final class Core {
    private static final GlobalContext GLOBAL = new GlobalContext();
    /** One checkpoint at a time; a second caller waits here, as in CRaC. */
    private static final Object LOCK = new Object();
    private static boolean inProgress;

    static {
        // Tell cracin this JVM coordinates, and start watching for its trigger.
        Control.start();
    }

    private Core() {
    }

    /**
     * Gets the global {@code Context} for checkpoint/restore notifications.
     *
     * @return the global context
     */
    public static Context<Resource> getGlobalContext() {
        return GLOBAL;
    }

    /**
     * Runs beforeCheckpoint on the registered resources, asks cracin to checkpoint this JVM,
     * and returns in every process restored from that checkpoint after afterRestore ran.
     *
     * @throws CheckpointException if a resource refused or cracin could not dump the JVM; the
     *     resources got afterRestore and the JVM carries on
     * @throws RestoreException if the JVM was restored but some afterRestore failed
     */
    public static void checkpointRestore() throws CheckpointException, RestoreException {
        checkpointRestoreInternal();
    }

    /** As {@link #checkpointRestore()}, telling how the checkpoint ended. */
    static Control.Kind checkpointRestoreInternal() throws CheckpointException, RestoreException {
        synchronized (LOCK) {
            // The lock is re-entrant: a Resource calling checkpointRestore would get here.
            if (inProgress) {
                CheckpointException e = new CheckpointException("Recursive checkpoint is not allowed");
                e.addSuppressed(new IllegalStateException("Recursive checkpoint is not allowed"));
                throw e;
            }
            inProgress = true;
            KeepAlive keepAlive = new KeepAlive();
            try {
                return checkpointRestore1();
            } finally {
                inProgress = false;
                keepAlive.release();
            }
        }
    }

    private static Control.Kind checkpointRestore1() throws CheckpointException, RestoreException {
        CheckpointException checkpointFailure = null;
        try {
            GLOBAL.beforeCheckpoint(null);
        } catch (CheckpointException e) {
            checkpointFailure = e;
        }

        Control.Kind kind = Control.Kind.FAILED;
        if (checkpointFailure == null) {
            Control.Outcome outcome = Control.requestAndWait();
            kind = outcome.kind;
            if (kind == Control.Kind.FAILED) {
                checkpointFailure = new CheckpointException(outcome.message);
                // org.crac keeps only the suppressed exceptions of what we throw.
                checkpointFailure.addSuppressed(new RuntimeException("cracin: " + outcome.message));
            } else if (kind == Control.Kind.RESTORED) {
                Control.restored = true;
            }
        } else {
            Control.reportAborted(checkpointFailure);
        }

        RestoreException restoreFailure = null;
        try {
            GLOBAL.afterRestore(null);
        } catch (RestoreException e) {
            if (checkpointFailure != null) {
                for (Throwable t : e.getSuppressed()) {
                    checkpointFailure.addSuppressed(t);
                }
            } else {
                restoreFailure = e;
            }
        }
        if (checkpointFailure != null) {
            throw checkpointFailure;
        }
        if (restoreFailure != null) {
            throw restoreFailure;
        }
        return kind;
    }

    /**
     * A non-daemon thread alive for the length of a checkpoint: a Resource that stops the last
     * non-daemon thread (an HTTP server, say) must not let the JVM exit under the daemon thread
     * that is waiting for the dump.
     */
    private static final class KeepAlive {
        private final CountDownLatch done = new CountDownLatch(1);

        KeepAlive() {
            Thread t = new Thread(() -> {
                boolean interrupted = false;
                while (true) {
                    try {
                        done.await();
                        break;
                    } catch (InterruptedException e) {
                        interrupted = true;
                    }
                }
                if (interrupted) {
                    Thread.currentThread().interrupt();
                }
            }, "cracin-keepalive");
            t.setDaemon(false);
            t.start();
        }

        void release() {
            done.countDown();
        }
    }
}
