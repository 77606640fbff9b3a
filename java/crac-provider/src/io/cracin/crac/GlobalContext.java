package io.cracin.crac;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Objects;

/**
 * The global context: resources in the order they were registered, notified in reverse order
 * before a checkpoint and in order after a restore, as in CRaC.
 *
 * <p>Resources are held strongly. CRaC holds them weakly, but the {@code org.crac} wrapper
 * registers a proxy whose only strong path is its own weak map, and resources registered here
 * directly are few and long-lived; a strong list makes the notifications deterministic. (The
 * wrapper still holds the application's own Resource weakly: the application must keep it.)
 */
final class GlobalContext extends Context<Resource> {
    private final List<Resource> resources = new ArrayList<>();
    /** Resources whose beforeCheckpoint ran (or was attempted), in call order. */
    private List<Resource> notified;
    private boolean checkpointing;
    private Thread checkpointThread;

    @Override
    public String toString() {
        return "io.cracin.crac global context";
    }

    @Override
    public void register(Resource resource) {
        Objects.requireNonNull(resource, "resource");
        synchronized (this) {
            // Another thread registering during a checkpoint waits until afterRestore starts, as
            // in CRaC, so that it cannot start using a resource that missed beforeCheckpoint. The
            // checkpointing thread itself (a Resource registering another) must not wait: it
            // would wait for itself. Its resource joins the list and is notified next time.
            boolean interrupted = false;
            while (checkpointing && Thread.currentThread() != checkpointThread) {
                try {
                    wait();
                } catch (InterruptedException e) {
                    // CRaC throws here; org.crac would then record the failure and refuse every
                    // later checkpoint. Registering at once is the lesser harm.
                    interrupted = true;
                    break;
                }
            }
            resources.add(resource);
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }

    @Override
    public void beforeCheckpoint(Context<? extends Resource> context) throws CheckpointException {
        List<Resource> snapshot;
        synchronized (this) {
            checkpointing = true;
            checkpointThread = Thread.currentThread();
            snapshot = new ArrayList<>(resources);
            notified = new ArrayList<>(snapshot.size());
        }
        Collections.reverse(snapshot);
        CheckpointException failure = null;
        for (Resource r : snapshot) {
            // Recorded before the call: a resource that failed half-way still gets afterRestore.
            notified.add(r);
            try {
                r.beforeCheckpoint(this);
            } catch (Throwable t) {
                if (t instanceof VirtualMachineError) {
                    throw (VirtualMachineError) t;
                }
                if (t instanceof InterruptedException) {
                    Thread.currentThread().interrupt();
                }
                if (failure == null) {
                    failure = new CheckpointException();
                }
                addFlattened(failure, t);
            }
        }
        if (failure != null) {
            throw failure;
        }
    }

    @Override
    public void afterRestore(Context<? extends Resource> context) throws RestoreException {
        List<Resource> queue;
        synchronized (this) {
            queue = notified;
            notified = null;
            checkpointing = false;
            checkpointThread = null;
            notifyAll();
        }
        if (queue == null) {
            return;
        }
        Collections.reverse(queue);
        RestoreException failure = null;
        for (Resource r : queue) {
            try {
                r.afterRestore(this);
            } catch (Throwable t) {
                if (t instanceof VirtualMachineError) {
                    throw (VirtualMachineError) t;
                }
                if (t instanceof InterruptedException) {
                    Thread.currentThread().interrupt();
                }
                if (failure == null) {
                    failure = new RestoreException();
                }
                addFlattened(failure, t);
            }
        }
        if (failure != null) {
            throw failure;
        }
    }

    /** Number of registered resources (for diagnostics). */
    synchronized int size() {
        return resources.size();
    }

    /**
     * A nested context's own Checkpoint/RestoreException (ours or org.crac's, which have no
     * message) only bundles its children's failures: lift those, as CRaC does.
     */
    private static void addFlattened(Exception into, Throwable t) {
        String name = t.getClass().getName();
        boolean bundle = t.getMessage() == null && t.getSuppressed().length > 0
                && (name.endsWith(".CheckpointException") || name.endsWith(".RestoreException"));
        if (bundle) {
            for (Throwable s : t.getSuppressed()) {
                into.addSuppressed(s);
            }
        } else {
            into.addSuppressed(t);
        }
    }
}
