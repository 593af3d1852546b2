# ncro: the web application in the ee11 environment, enabled by the ncro module
# when ncro.environment=ee11

[description]
Deploys the ncro web application (webapps/ncro.war at /) in the ee11 environment:
webapps/ncro.xml (context) and webapps/ncro.properties (environment=ee11) are copied
from modules/ncro/ee11.d/ when they do not exist yet. Enabled by the ncro module.

[tags]
ncro

[depend]
ee11-deploy

[files]
basehome:modules/ncro/ee11.d/ncro.xml|webapps/ncro.xml
basehome:modules/ncro/ee11.d/ncro.properties|webapps/ncro.properties
