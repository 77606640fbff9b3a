package io.cracin.example.modifier.api;

import org.osgi.annotation.versioning.ConsumerType;

/**
 * A service that transforms a string. Implementations are registered as OSGi
 * services (Declarative Services components) and picked up dynamically by the
 * REST resource.
 */
@ConsumerType
public interface StringModifier {

    /** Short, stable name of the modification, used as key in the JSON answer. */
    String name();

    /** Returns the modified form of {@code input}. */
    String modify(String input);
}
