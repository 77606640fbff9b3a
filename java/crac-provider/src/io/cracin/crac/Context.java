package io.cracin.crac;

/**
 * A resource that notifies other resources. Same shape as {@code jdk.crac.Context}: the
 * {@code org.crac} API jar looks up {@code register(Resource)} on this class by reflection.
 *
 * @param <R> the kind of resources this context accepts
 */
public abstract class Context<R extends Resource> implements Resource {
    /** For subclasses. */
    protected Context() {
    }

    @Override
    public abstract void beforeCheckpoint(Context<? extends Resource> context) throws CheckpointException;

    @Override
    public abstract void afterRestore(Context<? extends Resource> context) throws RestoreException;

    /**
     * Registers a resource to be notified of checkpoints and restores.
     *
     * @param resource the resource
     */
    public abstract void register(R resource);
}
