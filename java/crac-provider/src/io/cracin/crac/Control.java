package io.cracin.crac;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.util.SplittableRandom;

/**
 * The file protocol between this JVM and cracin, in the control directory named by
 * {@code -Dcracin.control}. Only whole files written atomically (NAME.tmp, then rename), only
 * stat and short reads: no socket and no open file descriptor may exist when CRIU dumps the JVM.
 *
 * <pre>
 * active            JVM  : written when Core initialises ("pid=N")
 * trigger           cracin: "checkpoint now"; the cracin-trigger thread deletes it and checkpoints
 * aborted           JVM  : a Resource refused the checkpoint (exception text)
 * request           JVM  : "nonce=HEX": Resources ran, dump me now; cracin claims it by deleting it
 * result-NONCE      cracin: "restored" (written before every restore), "failed\nMESSAGE",
 *                           or "continued" (dumped, original kept running)
 * </pre>
 */
final class Control {
    static final String PROPERTY = "cracin.control";
    static final String TIMEOUT_PROPERTY = "cracin.requestTimeoutMs";
    /** How long a request may wait for cracin to claim it before it is withdrawn. */
    private static final long DEFAULT_REQUEST_TIMEOUT_MS = 120_000;

    static final Path DIR = controlDir();
    /** Set once this process is a restored one: the trigger watcher then stops. */
    static volatile boolean restored;

    enum Kind {
        RESTORED, CONTINUED, FAILED
    }

    static final class Outcome {
        final Kind kind;
        final String message;

        Outcome(Kind kind, String message) {
            this.kind = kind;
            this.message = message;
        }

        static Outcome failed(String message) {
            return new Outcome(Kind.FAILED, message);
        }
    }

    private Control() {
    }

    private static Path controlDir() {
        String p = System.getProperty(PROPERTY);
        if (p == null || p.isEmpty()) {
            return null;
        }
        return Paths.get(p).toAbsolutePath();
    }

    /** Announces this JVM to cracin and starts the trigger watcher. */
    static void start() {
        if (DIR == null) {
            return;
        }
        try {
            Files.createDirectories(DIR);
            writeAtomic("active", "pid=" + ProcessHandle.current().pid() + "\n");
        } catch (IOException | RuntimeException e) {
            warn("cannot announce this JVM in " + DIR + ": " + e);
        }
        Thread t = new Thread(Control::watchTrigger, "cracin-trigger");
        t.setDaemon(true);
        t.start();
    }

    /**
     * Polls for the trigger file every 2 ms and runs the checkpoint as if the application had
     * called checkpointRestore (like {@code jcmd JDK.checkpoint} on a CRaC JDK). Stops after a
     * restore, or when the control directory is gone (cracin finished with this JVM).
     */
    private static void watchTrigger() {
        Path trigger = DIR.resolve("trigger");
        long rounds = 0;
        while (!restored) {
            if (!sleep(2)) {
                return;
            }
            if (++rounds % 500 == 0 && !Files.isDirectory(DIR)) {
                return;
            }
            if (!Files.exists(trigger)) {
                continue;
            }
            try {
                Files.delete(trigger);
            } catch (NoSuchFileException e) {
                continue;
            } catch (IOException e) {
                warn("cannot delete " + trigger + ": " + e);
                return;
            }
            try {
                Core.checkpointRestoreInternal();
            } catch (CheckpointException e) {
                // cracin learns it from "aborted" or from its own failure; keep watching so that
                // it may try again.
                warn("checkpoint failed: " + describe(e));
            } catch (RestoreException e) {
                warn("restored, but afterRestore failed: " + describe(e));
            } catch (RuntimeException | Error e) {
                warn("checkpoint failed: " + e);
            }
        }
    }

    /** Asks cracin to dump this JVM and waits for the answer (in the restored JVM too). */
    static Outcome requestAndWait() {
        if (DIR == null) {
            return Outcome.failed("this JVM was not started by cracin (no -D" + PROPERTY
                    + "): nothing can checkpoint it");
        }
        String nonce = nonce();
        Path request = DIR.resolve("request");
        Path result = DIR.resolve("result-" + nonce);
        try {
            writeAtomic("request", "nonce=" + nonce + "\n");
        } catch (IOException e) {
            return Outcome.failed("cannot write " + request + ": " + e);
        }
        long timeoutNanos = requestTimeoutMs() * 1_000_000L;
        long start = System.nanoTime();
        boolean claimed = false;
        boolean interrupted = false;
        long rounds = 0;
        try {
            while (true) {
                // cracin dumps the JVM while this thread is in this loop; in each restored process
                // the result file is already there, written by `cracin restore`.
                if (Files.exists(result)) {
                    String answer;
                    try {
                        answer = readSmall(result);
                    } catch (IOException e) {
                        answer = null;
                    }
                    if (answer != null) {
                        return interpret(answer, result);
                    }
                }
                if (!claimed) {
                    if (!Files.exists(request)) {
                        claimed = true;
                    } else if (System.nanoTime() - start > timeoutNanos) {
                        try {
                            Files.delete(request);
                            return Outcome.failed("cracin did not take the checkpoint request within "
                                    + requestTimeoutMs() + " ms");
                        } catch (NoSuchFileException e) {
                            claimed = true; // taken at the last moment
                        } catch (IOException e) {
                            return Outcome.failed("cannot withdraw " + request + ": " + e);
                        }
                    }
                }
                if (++rounds % 1000 == 0 && !Files.isDirectory(DIR)) {
                    return Outcome.failed("the control directory " + DIR + " vanished");
                }
                if (!sleep(1)) {
                    // cracin may be dumping us right now: the dump decides, not the interrupt, which
                    // is handed back to the caller afterwards.
                    interrupted = true;
                }
            }
        } finally {
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }

    private static Outcome interpret(String answer, Path result) {
        if (answer.startsWith("restored")) {
            // Never deleted: every process restored from this image reads it.
            return new Outcome(Kind.RESTORED, null);
        }
        deleteQuietly(result);
        if (answer.startsWith("continued")) {
            return new Outcome(Kind.CONTINUED, null);
        }
        if (answer.startsWith("failed")) {
            int nl = answer.indexOf('\n');
            String msg = nl < 0 ? "" : answer.substring(nl + 1).trim();
            return Outcome.failed(msg.isEmpty() ? "cracin could not dump the JVM" : msg);
        }
        int nl = answer.indexOf('\n');
        return Outcome.failed("unexpected answer from cracin: " + (nl < 0 ? answer : answer.substring(0, nl)));
    }

    /** Tells cracin that a Resource refused the checkpoint, with the exceptions. */
    static void reportAborted(CheckpointException e) {
        if (DIR == null) {
            return;
        }
        String text = stackTrace(e);
        if (text.length() > 64 * 1024) {
            text = text.substring(0, 64 * 1024) + "\n[...]\n";
        }
        try {
            writeAtomic("aborted", text);
        } catch (IOException io) {
            warn("cannot write " + DIR.resolve("aborted") + ": " + io);
        }
    }

    static void writeAtomic(String name, String content) throws IOException {
        Path tmp = DIR.resolve(name + ".tmp");
        Path dst = DIR.resolve(name);
        Files.write(tmp, content.getBytes(StandardCharsets.UTF_8));
        try {
            Files.move(tmp, dst, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(tmp, dst, StandardCopyOption.REPLACE_EXISTING);
        }
    }

    private static String readSmall(Path p) throws IOException {
        byte[] b = Files.readAllBytes(p);
        return new String(b, StandardCharsets.UTF_8);
    }

    private static void deleteQuietly(Path p) {
        try {
            Files.deleteIfExists(p);
        } catch (IOException e) {
            // cracin cleans the directory anyway
        }
    }

    private static long requestTimeoutMs() {
        try {
            long v = Long.parseLong(System.getProperty(TIMEOUT_PROPERTY, ""));
            return v > 0 ? v : DEFAULT_REQUEST_TIMEOUT_MS;
        } catch (NumberFormatException e) {
            return DEFAULT_REQUEST_TIMEOUT_MS;
        }
    }

    /**
     * 128 random bits in hex. A short read of /dev/urandom, closed at once (SecureRandom would
     * keep the device open in the image); a mix of clocks and the pid if that fails.
     */
    private static String nonce() {
        byte[] b = new byte[16];
        boolean ok = false;
        try (InputStream in = Files.newInputStream(Paths.get("/dev/urandom"))) {
            ok = in.readNBytes(b, 0, 16) == 16;
        } catch (IOException | RuntimeException e) {
            ok = false;
        }
        if (!ok) {
            SplittableRandom r = new SplittableRandom(System.nanoTime() ^ System.currentTimeMillis() << 20
                    ^ ProcessHandle.current().pid() << 40);
            for (int i = 0; i < b.length; i++) {
                b[i] = (byte) r.nextInt(256);
            }
        }
        StringBuilder sb = new StringBuilder(32);
        for (byte x : b) {
            sb.append(Character.forDigit((x >> 4) & 0xf, 16)).append(Character.forDigit(x & 0xf, 16));
        }
        return sb.toString();
    }

    private static boolean sleep(long ms) {
        try {
            Thread.sleep(ms);
            return true;
        } catch (InterruptedException e) {
            return false;
        }
    }

    private static String describe(Throwable e) {
        StringBuilder sb = new StringBuilder(String.valueOf(e));
        for (Throwable s : e.getSuppressed()) {
            sb.append("; ").append(s);
        }
        return sb.toString();
    }

    private static String stackTrace(Throwable e) {
        StringWriter sw = new StringWriter();
        e.printStackTrace(new PrintWriter(sw));
        return sw.toString();
    }

    private static void warn(String msg) {
        System.err.println("cracin: " + msg);
    }
}
