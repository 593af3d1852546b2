package dev.ncro.api;

/** A complete small answer the web layer writes as it is (health report, metrics). */
public record Answer(int status, String contentType, byte[] body) {}
