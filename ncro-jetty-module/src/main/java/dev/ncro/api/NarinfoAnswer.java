package dev.ncro.api;

/**
 * The outcome of a narinfo lookup, ready to be written: status 200 carries the narinfo bytes
 * exactly as the winning upstream sent them; 404 means every upstream said not-found; 502 and
 * 504 mean an upstream failed or the deadline passed before anyone had the path.
 *
 * @param status HTTP status to answer with
 * @param body narinfo bytes for 200, a short plain-text explanation otherwise
 * @param upstream the winning upstream's display name, or null
 */
public record NarinfoAnswer(int status, byte[] body, String upstream) {
    public boolean found() {
        return status == 200;
    }
}
