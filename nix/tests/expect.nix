# What nix/module.nix must do, scenario by scenario (see eval.nix). Evaluates to "ok", or
# fails with the first expectation that does not hold.
{ lib }:

let
  run = scenario: import ./eval.nix { inherit lib scenario; };

  expect =
    what: actual: expected:
    if actual == expected then
      true
    else
      throw "nix/module.nix: ${what}: expected ${builtins.toJSON expected}, got ${builtins.toJSON actual}";

  default = run "default";
  full = run "full";
  loopback = run "loopback";
  v6 = run "v6";
  bad = run "bad";
  empty = run "empty";
  disabled = run "disabled";

  checks = [
    (expect "options" default.optionNames [
      "enable"
      "environment"
      "jvmOptions"
      "netrcFile"
      "openFirewall"
      "package"
      "settings"
    ])

    # defaults: the embedded default upstream, the database in the state directory
    (expect "default settings" default.settings {
      server = {
        listen = ":8080";
        cache_priority = 30;
      };
      upstreams = [
        {
          url = "https://cache.nixos.org";
          priority = 10;
          public_key = "cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=";
          public_keys = [ ];
        }
      ];
      cache.db_path = "/var/lib/ncro/ncro.db";
      logging = {
        level = "info";
        format = "text";
      };
      mesh = {
        enabled = false;
        bind_addr = "0.0.0.0:7946";
      };
    })
    (expect "default assertions" default.failedAssertions [ ])
    (expect "default warnings" default.warnings [ ])
    (expect "default firewall" default.firewall {
      tcp = [ ];
      udp = [ ];
    })
    (expect "default capabilities" [
      default.serviceConfig.CapabilityBoundingSet
      default.serviceConfig.AmbientCapabilities
    ] [ "" "" ])
    (expect "JIT needs W+X" default.serviceConfig.MemoryDenyWriteExecute false)
    (expect "default credentials" default.serviceConfig.LoadCredential [ ])
    (expect "environment" (builtins.attrNames default.environment) [ "NCRO_CONFIG" ])
    (expect "ExecStart" default.serviceConfig.ExecStart (lib.concatStringsSep " " [
      ''"/nix/store/22222222222222222222222222222222-openjdk-headless-17/bin/java"''
      ''"-jar"''
      ''"/nix/store/11111111111111111111111111111111-ncro-0.1.0-SNAPSHOT/share/ncro/jetty-home/start.jar"''
      ''"jetty.home=/nix/store/11111111111111111111111111111111-ncro-0.1.0-SNAPSHOT/share/ncro/jetty-home"''
      ''"jetty.base=/nix/store/11111111111111111111111111111111-ncro-0.1.0-SNAPSHOT/share/ncro/jetty-base"''
    ]))

    # freeform keys pass through, typed ones keep their defaults, netrc goes by credential
    (expect "full server" full.settings.server {
      listen = "0.0.0.0:80";
      cache_priority = 30;
      first_byte_timeout = "5s";
      netrc_file = "/run/credentials/ncro.service/netrc";
    })
    (expect "full second upstream" (builtins.elemAt full.settings.upstreams 1) {
      url = "http://attic.internal/main";
      priority = 50;
      public_keys = [ ];
      filters = [
        {
          action = "deny";
          field = "name";
          pattern = "*-source";
        }
      ];
      timeout.first_byte = "2s";
    })
    (expect "full cache" full.settings.cache {
      db_path = "/var/lib/ncro/ncro.db";
      race_deadline = "3s";
      mass_query.per_upstream_max_inflight = 16;
    })
    (expect "full firewall" full.firewall {
      tcp = [ 80 ];
      udp = [ 7946 ];
    })
    (expect "port 80 capability" [
      full.serviceConfig.CapabilityBoundingSet
      full.serviceConfig.AmbientCapabilities
    ] [ "CAP_NET_BIND_SERVICE" "CAP_NET_BIND_SERVICE" ])
    (expect "netrc credential" full.serviceConfig.LoadCredential [ "netrc:/etc/nix/netrc" ])
    (expect "environment option" full.environment.NCRO_LOG_LEVEL "debug")
    (expect "JVM options, % escaped" (lib.hasInfix ''"-Xmx512m" "-Dx=100%%" "-jar"'' full.serviceConfig.ExecStart) true)
    (expect "mesh ephemeral-key warning" (builtins.length full.warnings) 1)

    (expect "loopback firewall" loopback.firewall {
      tcp = [ ];
      udp = [ ];
    })
    (expect "v6 firewall" v6.firewall {
      tcp = [ 8080 ];
      udp = [ ];
    })

    (expect "bad listen" bad.failedAssertions [
      ''services.ncro.settings.server.listen = "8080": expected host:port, :port or [v6]:port.''
    ])
    (expect "bad warnings" (builtins.length bad.warnings) 2)
    (expect "no upstreams" empty.failedAssertions [ "services.ncro.settings.upstreams: ncro needs at least one upstream." ])

    (expect "disabled" [
      disabled.serviceConfig
      disabled.firewall
    ] [
      null
      {
        tcp = [ ];
        udp = [ ];
      }
    ])
  ];
in
builtins.deepSeq checks "ok"
