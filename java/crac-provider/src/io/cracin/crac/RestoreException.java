package io.cracin.crac;

/**
 * The JVM was restored, but some resources failed in {@code afterRestore}; their exceptions are
 * attached as suppressed exceptions.
 */
public class RestoreException extends Exception {
    private static final long serialVersionUID = 1L;

    /** An exception without a message; the causes are added as suppressed exceptions. */
    public RestoreException() {
        super();
    }

    /**
     * @param message what went wrong
     */
    public RestoreException(String message) {
        super(message);
    }
}
