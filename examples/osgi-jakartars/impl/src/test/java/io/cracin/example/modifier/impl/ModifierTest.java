package io.cracin.example.modifier.impl;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class ModifierTest {

    @Test
    void upperCase() {
        assertEquals("FUBAR", new UpperCaseModifier().modify("fubar"));
    }

    @Test
    void reverse() {
        assertEquals("rabuf", new ReverseModifier().modify("fubar"));
        assertEquals("", new ReverseModifier().modify(""));
    }

    @Test
    void camelCase() {
        assertEquals("helloOsgiWorld42", new CamelCaseModifier().modify("hello_osgi-world 42"));
        assertEquals("fubar", new CamelCaseModifier().modify("fubar"));
    }
}
