# ncro: Nix Cache Route Optimizer

[description]
ncro engine: races narinfo lookups across Nix binary caches, remembers the winner and
streams NARs from it. Server-level beans; the ncro web application (webapps/ncro.war)
answers the HTTP requests through them.

[tags]
ncro

[depend]
server
http

[before]
# the engine bean is added (and started) before the deployer scans webapps/
deployment-scanner

[lib]
lib/ncro/*.jar

[xml]
etc/ncro.xml

[ini-template]
## Path of the ncro YAML configuration. Empty: the embedded default
## (cache.nixos.org, listen :8080). The environment variable NCRO_CONFIG wins over this.
## NCRO_LISTEN (host:port), NCRO_DB_PATH and NCRO_LOG_LEVEL override single keys.
## The listen address (server.listen) replaces jetty.http.host / jetty.http.port.
# ncro.config=

## A configuration that cannot be used is reported in one ERROR (every problem, with its
## key and line) and the process exits with status 78 (EX_CONFIG; systemd units can use
## RestartPreventExitStatus=78). false: the failed start is left to Jetty instead.
# ncro.exitOnConfigError=true
