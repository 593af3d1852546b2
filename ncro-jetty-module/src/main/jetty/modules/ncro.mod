# ncro: Nix Cache Route Optimizer

[description]
ncro, the Nix Cache Route Optimizer: an HTTP proxy between nix-daemon and Nix binary
caches. Races narinfo lookups across the caches, remembers the winner and streams NARs
from it. Enables the ncro engine (server-level beans, lib/ncro/) and deploys its web
application (webapps/ncro.war at /) in the environment named by ncro.environment.

[tags]
ncro

[depend]
ncro/engine
ncro/${ncro.environment}

[ini]
ncro.environment?=ee11

[ini-template]
## The Jakarta EE environment the ncro web application is deployed in: ee11 (Jetty 12.1's
## default) or ee10. Choose when adding the module, e.g.
##   java -jar $JETTY_HOME/start.jar --add-modules=ncro ncro.environment=ee10
## which enables ee10-deploy if the base lacks it and copies webapps/ncro.xml and
## webapps/ncro.properties for that environment. To switch later, delete those two files
## and add the module again with the other value.
# ncro.environment=ee11

## Path of the ncro YAML configuration. Empty: the embedded default
## (cache.nixos.org, listen :8080). The environment variable NCRO_CONFIG wins over this.
## NCRO_LISTEN (host:port), NCRO_DB_PATH and NCRO_LOG_LEVEL override single keys.
## The listen address (server.listen) replaces jetty.http.host / jetty.http.port.
# ncro.config=

## A configuration that cannot be used is reported in one ERROR (every problem, with its
## key and line) and the process exits with status 78 (EX_CONFIG; systemd units can use
## RestartPreventExitStatus=78). false: the failed start is left to Jetty instead.
# ncro.exitOnConfigError=true
