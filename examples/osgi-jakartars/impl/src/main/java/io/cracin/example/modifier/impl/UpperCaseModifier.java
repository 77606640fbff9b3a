package io.cracin.example.modifier.impl;

import java.util.Locale;

import io.cracin.example.modifier.api.StringModifier;
import org.osgi.service.component.annotations.Component;

/** Upper-cases the input. */
@Component(service = StringModifier.class)
public class UpperCaseModifier implements StringModifier {

    @Override
    public String name() {
        return "uppercase";
    }

    @Override
    public String modify(String input) {
        return input == null ? "" : input.toUpperCase(Locale.ROOT);
    }
}
