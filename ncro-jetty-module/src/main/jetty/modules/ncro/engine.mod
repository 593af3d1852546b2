# ncro: the engine, enabled by the ncro module (its properties are in ncro.mod)

[description]
The ncro engine as server-level beans (lib/ncro/, etc/ncro.xml), started before the
deployment scanner deploys webapps/ncro.war. Enabled by the ncro module.

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
