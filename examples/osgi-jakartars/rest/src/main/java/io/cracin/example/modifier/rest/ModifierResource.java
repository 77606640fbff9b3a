package io.cracin.example.modifier.rest;

import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import io.cracin.example.modifier.api.StringModifier;
import jakarta.json.JsonArrayBuilder;
import jakarta.json.JsonObject;
import jakarta.json.JsonObjectBuilder;
import jakarta.json.JsonWriterFactory;
import jakarta.json.spi.JsonProvider;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.PathParam;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.MediaType;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.FieldOption;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.component.annotations.ReferenceCardinality;
import org.osgi.service.component.annotations.ReferencePolicy;
import org.osgi.service.jakartars.whiteboard.annotations.RequireJakartarsWhiteboard;
import org.osgi.service.jakartars.whiteboard.propertytypes.JakartarsName;
import org.osgi.service.jakartars.whiteboard.propertytypes.JakartarsResource;

/**
 * Jakarta REST resource, registered on the Jakarta RESTful Web Services
 * whiteboard by Declarative Services.
 *
 * <ul>
 * <li>{@code GET /modify/{input}} - applies every registered {@link StringModifier}</li>
 * <li>{@code GET /modify/stats} (alias {@code GET /stats}) - request counter and activation timestamp</li>
 * <li>{@code GET /health} - 200 as soon as this resource is registered on the whiteboard</li>
 * </ul>
 */
@RequireJakartarsWhiteboard
@JakartarsResource
@JakartarsName("cracin-modifier")
// immediate: one instance for the whole run, so the counter and the timestamp are never reset
// when the whiteboard releases and re-gets the service while (re)building the application
@Component(service = ModifierResource.class, immediate = true)
@Path("/")
@Produces(MediaType.APPLICATION_JSON)
public class ModifierResource {

    private static final Pattern VOWELS = Pattern.compile("[aeiouAEIOU]");
    private static final Pattern WORDS = Pattern.compile("\\p{L}+|\\p{N}+");

    /** Dynamic, greedy: modifiers may come and go at runtime. */
    @Reference(cardinality = ReferenceCardinality.MULTIPLE, policy = ReferencePolicy.DYNAMIC,
            fieldOption = FieldOption.UPDATE)
    private final List<StringModifier> modifiers = new CopyOnWriteArrayList<>();

    private final AtomicLong requestCount = new AtomicLong();
    /** Parsson, looked up once (API and implementation live in one bundle). */
    private final JsonProvider json = JsonProvider.provider();
    private final JsonWriterFactory writerFactory = json.createWriterFactory(Map.of());
    private long startupTimestamp;

    @Activate
    void activate() {
        // taken exactly once per component activation; a CRIU restore keeps it unchanged
        startupTimestamp = System.currentTimeMillis();
        System.out.println("cracin-example: ModifierResource activated at " + startupTimestamp);
    }

    @GET
    @Path("health")
    public String health() {
        return write(json.createObjectBuilder()
                .add("status", "UP")
                .add("modifiers", modifiers.size())
                .build());
    }

    @GET
    @Path("modify/stats")
    public String stats() {
        return write(json.createObjectBuilder()
                .add("requestCount", requestCount.get())
                .add("startupTimestamp", startupTimestamp)
                .add("uptimeMillis", System.currentTimeMillis() - startupTimestamp)
                .add("jvmStartTime", ManagementFactory.getRuntimeMXBean().getStartTime())
                .add("pid", ProcessHandle.current().pid())
                .add("modifiers", modifiers.size())
                .build());
    }

    @GET
    @Path("stats")
    public String statsAlias() {
        return stats();
    }

    @GET
    @Path("modify/{input}")
    public String modify(@PathParam("input") String input) {
        long n = requestCount.incrementAndGet();
        List<StringModifier> sorted = new ArrayList<>(modifiers);
        sorted.sort(Comparator.comparing(StringModifier::name));

        JsonArrayBuilder modified = json.createArrayBuilder();
        JsonArrayBuilder details = json.createArrayBuilder();
        String chained = input;
        for (StringModifier m : sorted) {
            String out = m.modify(input);
            chained = m.modify(chained);
            modified.add(out);
            details.add(describe(m.name(), out));
        }
        JsonObject result = json.createObjectBuilder()
                .add("input", input)
                .add("modified", modified)
                .add("details", details)
                .add("chained", describe("chained", chained))
                .add("request", n)
                .build();
        return write(result);
    }

    private JsonObjectBuilder describe(String name, String value) {
        Map<String, Integer> freq = new TreeMap<>();
        Matcher w = WORDS.matcher(value);
        int words = 0;
        while (w.find()) {
            words++;
        }
        value.codePoints().forEach(cp -> freq.merge(new String(Character.toChars(cp)), 1, Integer::sum));
        JsonObjectBuilder histogram = json.createObjectBuilder();
        freq.forEach(histogram::add);
        long vowels = VOWELS.matcher(value).results().count();
        return json.createObjectBuilder()
                .add("modifier", name)
                .add("value", value)
                .add("length", value.length())
                .add("words", words)
                .add("vowels", vowels)
                .add("sha256", sha256(value))
                .add("histogram", histogram);
    }

    private static String sha256(String s) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            return HexFormat.of().formatHex(md.digest(s.getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private String write(JsonObject o) {
        java.io.StringWriter sw = new java.io.StringWriter();
        try (var jw = writerFactory.createWriter(sw)) {
            jw.write(o);
        }
        return sw.toString();
    }
}
