# NixOS module: services.ncro (see docs/nixos.md).
#
# ncro runs as a stock Jetty 12 distribution: `java -jar start.jar jetty.home=… jetty.base=…`.
# The jetty-home and the Jetty base are both used read-only from the package in the Nix
# store. ncro writes its route database to settings.cache.db_path (by default
# /var/lib/ncro/ncro.db, in the StateDirectory of the dynamic user), and the unpacked WAR,
# sqlite-jdbc's native library and start.jar's properties file to java.io.tmpdir, which is
# the service's private /tmp.
#
# Why not copy a Jetty base into /var/lib/ncro at start: the ncro module loads
# lib/ncro/*.jar, so a copied base that an upgrade refreshes incompletely (a jar renamed
# by a version bump, an interrupted copy) would put two versions of a library on the
# server classpath. A base in the store changes atomically with the package, rolls back
# with it, and needs no ExecStartPre. Jetty writes nothing into its base.
{
  config,
  lib,
  pkgs,
  utils,
  ...
}:

let
  inherit (lib) mkOption types;

  cfg = config.services.ncro;
  settingsFormat = pkgs.formats.yaml { };

  # ncro has a default for every key it is not given; an option left null is left out of
  # the file rather than written as `null`.
  dropNulls =
    value:
    if lib.isAttrs value then
      lib.mapAttrs (_: dropNulls) (lib.filterAttrs (_: v: v != null) value)
    else if lib.isList value then
      map dropNulls value
    else
      value;

  configFile = settingsFormat.generate "ncro.yaml" (dropNulls cfg.settings);

  # "host:port", ":port" (every interface) or "[v6]:port", as ncro reads server.listen
  # and mesh.bind_addr; null when the text is none of these.
  parseAddress =
    text:
    let
      m = builtins.match "(\\[[0-9A-Fa-f:.]+]|[^:]*):([0-9]+)" text;
    in
    if m == null then
      null
    else
      {
        host = lib.elemAt m 0;
        port = lib.toInt (lib.elemAt m 1);
      };

  isLoopback =
    host: host == "localhost" || host == "[::1]" || lib.hasPrefix "127." host;

  listen = parseAddress cfg.settings.server.listen;
  meshEnabled = cfg.settings.mesh.enabled;
  mesh = parseAddress cfg.settings.mesh.bind_addr;

  # Ports ncro binds, for the firewall and for CAP_NET_BIND_SERVICE; port 0 means "any".
  tcpPort = if listen != null && listen.port > 0 then listen.port else null;
  udpPort = if meshEnabled && mesh != null && mesh.port > 0 then mesh.port else null;
  privileged = lib.any (p: p != null && p < 1024) [
    tcpPort
    udpPort
  ];

  jettyHome = "${cfg.package}/share/ncro/jetty-home";
  jettyBase = "${cfg.package}/share/ncro/jetty-base";
  java = cfg.package.jre or pkgs.jdk17_headless;

  stateDir = "/var/lib/ncro";
  netrcCredential = "/run/credentials/ncro.service/netrc";

  upstreamModule = {
    freeformType = settingsFormat.type;
    options = {
      url = mkOption {
        type = types.strMatching "https?://[^?#]+";
        example = "https://cache.nixos.org";
        description = "Base URL of the binary cache (http or https; no query, fragment or credentials).";
      };
      priority = mkOption {
        type = types.ints.unsigned;
        default = 50;
        description = "Lower is asked first; upstreams of equal priority race as one tier.";
      };
      public_key = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=";
        description = ''
          Key (`name:base64`) whose signature a narinfo from this upstream must carry.
          Without any key, this upstream's narinfos are served unchecked.
        '';
      };
      public_keys = mkOption {
        type = types.listOf types.str;
        default = [ ];
        description = "More keys, as `public_key`; one valid signature from any of them is enough.";
      };
    };
  };

  section =
    description: options:
    mkOption {
      type = types.submodule {
        freeformType = settingsFormat.type;
        inherit options;
      };
      default = { };
      inherit description;
    };

  settingsModule = {
    freeformType = settingsFormat.type;
    options = {
      server = section "The `server` section: listen address, timeouts, `cache_priority`, `netrc_file`." {
        listen = mkOption {
          type = types.str;
          default = ":8080";
          example = "127.0.0.1:8080";
          description = ''
            Where ncro's HTTP connector listens: `host:port`, `:port` (every interface) or
            `[v6]:port`. {option}`services.ncro.openFirewall` opens this TCP port.
          '';
        };
        cache_priority = mkOption {
          type = types.ints.unsigned;
          default = 30;
          description = "`Priority` in `/nix-cache-info`; Nix asks lower numbers first (cache.nixos.org says 40).";
        };
      };

      upstreams = mkOption {
        type = types.listOf (types.submodule upstreamModule);
        default = [
          {
            url = "https://cache.nixos.org";
            priority = 10;
            public_key = "cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=";
          }
        ];
        defaultText = lib.literalExpression ''
          [ {
            url = "https://cache.nixos.org";
            priority = 10;
            public_key = "cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=";
          } ]
        '';
        description = ''
          The binary caches ncro races. Each entry also takes ncro's other upstream keys
          (`filters`, `timeout`, `redirect_hosts`, `username`/`password` — but a password
          written here ends up in the world-readable Nix store: use
          {option}`services.ncro.netrcFile` instead).
        '';
      };

      cache = section "The `cache` section: route database, TTLs, memory budget, `mass_query` limits." {
        db_path = mkOption {
          type = types.str;
          default = "${stateDir}/ncro.db";
          description = ''
            The SQLite route database. The default is in the service's state directory;
            a path elsewhere must be writable by the service's dynamic user (the unit
            has `ProtectSystem=strict`: add it to `ReadWritePaths`).
          '';
        };
      };

      logging = section "The `logging` section." {
        level = mkOption {
          type = types.enum [
            "trace"
            "debug"
            "info"
            "warn"
            "error"
          ];
          default = "info";
          description = "Log level of the whole server (the journal receives ncro's standard output).";
        };
        format = mkOption {
          type = types.enum [
            "text"
            "json"
          ];
          default = "text";
          description = "`text`, or `json` for one JSON object per line.";
        };
      };

      mesh = section "The `mesh` section: share verified routes with other ncro nodes over signed UDP gossip." {
        enabled = mkOption {
          type = types.bool;
          default = false;
          description = "Gossip routes with the nodes in `mesh.peers` (ed25519-signed UDP; see docs/mesh.md).";
        };
        bind_addr = mkOption {
          type = types.str;
          default = "0.0.0.0:7946";
          description = ''
            UDP address of the mesh. {option}`services.ncro.openFirewall` opens this UDP
            port when `mesh.enabled` is true.
          '';
        };
      };
    };
  };
in
{
  options.services.ncro = {
    enable = lib.mkEnableOption "ncro, the Nix Cache Route Optimizer (Jetty 12)";

    package = mkOption {
      type = types.package;
      default = pkgs.callPackage ./package.nix { };
      defaultText = lib.literalExpression "pkgs.callPackage ./package.nix { }";
      description = ''
        The ncro package: `share/ncro/jetty-home`, `share/ncro/jetty-base` and, as
        `passthru.jre`, the Java runtime that runs them.
      '';
    };

    settings = mkOption {
      type = types.submodule settingsModule;
      default = { };
      description = ''
        ncro's configuration, written to a YAML file that `NCRO_CONFIG` names. The keys
        are ncro's (the README's configuration table); the options below are typed, any
        other key is passed through as written, and ncro refuses unknown keys and invalid
        values at start with a message naming each one. Durations are strings such as
        `"5s"` or `"1h30m"`, sizes strings such as `"64MiB"`.
      '';
      example = lib.literalExpression ''
        {
          server.listen = "0.0.0.0:8080";
          upstreams = [
            { url = "https://cache.nixos.org"; priority = 10;
              public_key = "cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY="; }
            { url = "https://nix-community.cachix.org"; priority = 10;
              public_key = "nix-community.cachix.org-1:mB9FSh9qf2dCimDSUo8Zy7bkq5CX+/rkCWyvRCYg3Fs="; }
          ];
          cache.race_deadline = "3s";
        }
      '';
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Open the TCP port of `settings.server.listen` and, when `settings.mesh.enabled`,
        the UDP port of `settings.mesh.bind_addr`. A loopback address or port 0 opens nothing.
      '';
    };

    netrcFile = mkOption {
      type = types.nullOr (types.strMatching "/.+");
      default = null;
      example = "/etc/nix/netrc";
      description = ''
        A netrc file with upstream logins, read by systemd (`LoadCredential`) and handed
        to ncro as `settings.server.netrc_file`; it stays out of the Nix store and need
        not be readable by the service's dynamic user. Give it as a string, not a Nix
        path (a path would be copied into the store).
      '';
    };

    jvmOptions = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [
        "-Xmx512m"
        "-XX:+ExitOnOutOfMemoryError"
      ];
      description = "Options for the JVM, before `-jar start.jar`.";
    };

    environment = mkOption {
      type = types.attrsOf types.str;
      default = { };
      example = {
        NCRO_LOG_LEVEL = "debug";
      };
      description = ''
        Environment of the service, on top of `NCRO_CONFIG`. ncro reads `NCRO_LISTEN`,
        `NCRO_DB_PATH` and `NCRO_LOG_LEVEL` as overrides of single keys (they win over
        {option}`services.ncro.settings`, but `openFirewall` only knows the settings).
      '';
    };
  };

  config = lib.mkIf cfg.enable {
    services.ncro.settings.server.netrc_file = lib.mkIf (cfg.netrcFile != null) netrcCredential;

    assertions = [
      {
        assertion = cfg.settings.upstreams != [ ];
        message = "services.ncro.settings.upstreams: ncro needs at least one upstream.";
      }
      {
        assertion = listen != null;
        message = "services.ncro.settings.server.listen = \"${cfg.settings.server.listen}\": expected host:port, :port or [v6]:port.";
      }
      {
        assertion = !meshEnabled || mesh != null;
        message = "services.ncro.settings.mesh.bind_addr = \"${cfg.settings.mesh.bind_addr}\": expected host:port, :port or [v6]:port.";
      }
    ];

    warnings =
      lib.optional (meshEnabled && (cfg.settings.mesh.private_key or "") == "")
        "services.ncro.settings.mesh.private_key is empty: the node gets a new key at every start, so its peers cannot list it; set it to a file in the state directory, e.g. /var/lib/ncro/mesh.key (created if missing)."
      ++ lib.optional ((cfg.settings.discovery.enabled or false) && (cfg.settings.discovery.public_keys or [ ]) == [ ]) "services.ncro.settings.discovery.enabled needs services.ncro.settings.discovery.public_keys: ncro refuses to start without a key that discovered caches' narinfos must be signed by."
      ++ lib.optional (!lib.hasPrefix "/" cfg.settings.cache.db_path) "services.ncro.settings.cache.db_path = \"${cfg.settings.cache.db_path}\" is relative: ncro resolves it in the read-only Jetty base and keeps routes in memory only. Give an absolute path."
      ++ lib.concatMap (
        u:
        lib.optional (
          u ? password
        ) "services.ncro.settings.upstreams: the password for ${u.url} is written to the world-readable Nix store; use services.ncro.netrcFile."
      ) cfg.settings.upstreams;

    networking.firewall = lib.mkIf cfg.openFirewall {
      allowedTCPPorts = lib.optional (tcpPort != null && !isLoopback listen.host) tcpPort;
      allowedUDPPorts = lib.optional (udpPort != null && !isLoopback mesh.host) udpPort;
    };

    systemd.services.ncro = {
      description = "ncro, the Nix Cache Route Optimizer";
      wantedBy = [ "multi-user.target" ];
      after = [ "network.target" ];

      environment = {
        NCRO_CONFIG = "${configFile}";
      }
      // cfg.environment;

      serviceConfig = {
        ExecStart = utils.escapeSystemdExecArgs (
          [ "${java}/bin/java" ]
          ++ cfg.jvmOptions
          ++ [
            "-jar"
            "${jettyHome}/start.jar"
            "jetty.home=${jettyHome}"
            "jetty.base=${jettyBase}"
          ]
        );
        # The JVM ends with 128 + SIGTERM when systemd stops it.
        SuccessExitStatus = 143;
        Restart = "on-failure";
        RestartSec = "5s";
        # a configuration ncro refuses (one ERROR listing every problem) exits 78 (EX_CONFIG)
        RestartPreventExitStatus = 78;
        # Every NAR stream holds a client socket and an upstream socket.
        LimitNOFILE = 65536;

        DynamicUser = true;
        StateDirectory = "ncro";
        StateDirectoryMode = "0700";
        WorkingDirectory = stateDir;
        LoadCredential = lib.optional (cfg.netrcFile != null) "netrc:${cfg.netrcFile}";

        # Hardening. Binding a port below 1024 is the only capability ncro may need.
        CapabilityBoundingSet = if privileged then "CAP_NET_BIND_SERVICE" else "";
        AmbientCapabilities = if privileged then "CAP_NET_BIND_SERVICE" else "";
        NoNewPrivileges = true;
        ProtectSystem = "strict";
        ProtectHome = true;
        PrivateTmp = true;
        PrivateDevices = true;
        ProtectKernelTunables = true;
        ProtectKernelModules = true;
        ProtectKernelLogs = true;
        ProtectControlGroups = true;
        ProtectClock = true;
        ProtectHostname = true;
        RestrictAddressFamilies = [
          "AF_INET"
          "AF_INET6"
          "AF_UNIX"
        ];
        RestrictNamespaces = true;
        LockPersonality = true;
        # Must stay off: the JVM's JIT compilers write machine code into memory and then
        # execute it, which W^X forbids (the JVM would crash at start).
        MemoryDenyWriteExecute = false;
        SystemCallArchitectures = "native";
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        RemoveIPC = true;
        UMask = "0077";
      };
    };
  };
}
