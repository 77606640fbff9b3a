package io.cracin.crac;

/**
 * The checkpoint did not happen: a resource refused it, or cracin could not dump the JVM. The
 * causes are attached as suppressed exceptions (the {@code org.crac} wrapper copies only those,
 * not the message). The JVM carries on as before.
 */
public class CheckpointException extends Exception {
    private static final long serialVersionUID = 1L;

    /** An exception without a message; the causes are added as suppressed exceptions. */
    public CheckpointException() {
        super();
    }

    /**
     * @param message what went wrong
     */
    public CheckpointException(String message) {
        super(message);
    }
}
