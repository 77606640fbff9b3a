package io.cracin.crac;

/**
 * An object that is told before the JVM is checkpointed and after it is restored. Same shape as
 * {@code jdk.crac.Resource}, so that the {@code org.crac} API jar can drive it by reflection.
 */
public interface Resource {
    /**
     * Called before the checkpoint, in the reverse order of registration.
     *
     * @param context the context this resource is registered with
     * @throws Exception to refuse the checkpoint; the JVM carries on
     */
    void beforeCheckpoint(Context<? extends Resource> context) throws Exception;

    /**
     * Called after a restore (or after a checkpoint that failed), in the order of registration.
     *
     * @param context the context this resource is registered with
     * @throws Exception reported as a suppressed exception of {@link RestoreException}
     */
    void afterRestore(Context<? extends Resource> context) throws Exception;
}
