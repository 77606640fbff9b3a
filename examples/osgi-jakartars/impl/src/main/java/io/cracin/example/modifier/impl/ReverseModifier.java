package io.cracin.example.modifier.impl;

import io.cracin.example.modifier.api.StringModifier;
import org.osgi.service.component.annotations.Component;

/** Reverses the input (code point aware, so surrogate pairs stay intact). */
@Component(service = StringModifier.class)
public class ReverseModifier implements StringModifier {

    @Override
    public String name() {
        return "reverse";
    }

    @Override
    public String modify(String input) {
        if (input == null) {
            return "";
        }
        int[] cps = input.codePoints().toArray();
        StringBuilder sb = new StringBuilder(input.length());
        for (int i = cps.length - 1; i >= 0; i--) {
            sb.appendCodePoint(cps[i]);
        }
        return sb.toString();
    }
}
