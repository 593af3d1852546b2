# ncro: the web application in the ee10 environment, enabled by the ncro module
# when ncro.environment=ee10

[description]
Deploys the ncro web application (webapps/ncro.war at /) in the ee10 environment:
webapps/ncro.xml (context) and webapps/ncro.properties (environment=ee10) are copied
from modules/ncro/ee10.d/ when they do not exist yet. Enabled by the ncro module.

[tags]
ncro

[depend]
ee10-deploy

[files]
basehome:modules/ncro/ee10.d/ncro.xml|webapps/ncro.xml
basehome:modules/ncro/ee10.d/ncro.properties|webapps/ncro.properties
