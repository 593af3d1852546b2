package dev.ncro.upstream;

/** A small, fully read upstream answer (a narinfo or an error page). */
public record Fetched(int status, byte[] body) {}
