package io.cracin.example.modifier.impl;

import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import io.cracin.example.modifier.api.StringModifier;
import org.osgi.service.component.annotations.Component;

/**
 * Splits the input into words with a regular expression (on non-alphanumerics
 * and lower/upper case boundaries) and joins them in camelCase.
 */
@Component(service = StringModifier.class)
public class CamelCaseModifier implements StringModifier {

    private static final Pattern WORD = Pattern.compile("[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\\d+|[^\\W_\\d]+");

    @Override
    public String name() {
        return "camelcase";
    }

    @Override
    public String modify(String input) {
        if (input == null) {
            return "";
        }
        Matcher m = WORD.matcher(input);
        StringBuilder sb = new StringBuilder(input.length());
        while (m.find()) {
            String w = m.group().toLowerCase(Locale.ROOT);
            if (sb.length() == 0) {
                sb.append(w);
            } else {
                sb.append(Character.toUpperCase(w.charAt(0))).append(w, 1, w.length());
            }
        }
        return sb.toString();
    }
}
