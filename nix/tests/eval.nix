# Evaluates nix/module.nix with nixpkgs' real module system (lib) but stub NixOS options
# and a stub pkgs, for nix/check-eval. Without nixpkgs' NixOS tree this is as far as the
# module can be evaluated here; the NixOS test (nix/test.nix) is the real thing.
#
#   nix-instantiate --eval --strict --json nix/tests/eval.nix --arg lib 'import <lib>' \
#     --argstr scenario default
{
  lib,
  scenario ? "default",
  # The package as the module sees it: a path with share/ncro/jetty-{home,base}, and the
  # Java runtime. check-eval points these at the Maven build and the local JDK.
  packagePath ? "/nix/store/11111111111111111111111111111111-ncro-0.1.0-SNAPSHOT",
  jrePath ? "/nix/store/22222222222222222222222222222222-openjdk-headless-17",
  # What NCRO_CONFIG says in unitText (the generated file does not exist here).
  configPath ? "/etc/ncro/config.yaml",
  # The "smoke" scenario: check-eval starts the Jetty distribution with its ExecStart.
  smokePort ? "8080",
  smokeState ? "/var/lib/ncro",
}:

let
  inherit (lib) mkOption types;

  generatedMarker = "generated-yaml:";

  # pkgs.formats.yaml's type (yaml_1_1), and a generator that, instead of a file, returns
  # the file's text as JSON (a subset of YAML) behind a marker: evaluation stays read-only.
  yamlValue =
    types.nullOr (
      types.oneOf [
        types.bool
        types.int
        types.float
        types.str
        types.path
        (types.attrsOf yamlValue)
        (types.listOf yamlValue)
      ]
    )
    // {
      description = "YAML value";
    };

  pkgs = {
    formats.yaml = { }: {
      type = yamlValue;
      generate = name: value: generatedMarker + builtins.toJSON value;
    };
    jdk17_headless = "/nix/store/00000000000000000000000000000000-openjdk-headless-17";
    callPackage = _: _: throw "the package is stubbed in these checks";
  };

  # nixpkgs nixos/lib/utils.nix
  utils.escapeSystemdExecArgs = lib.concatMapStringsSep " " (
    arg: builtins.replaceStrings [ "%" "$" ] [ "%%" "$$" ] (builtins.toJSON arg)
  );

  stubOptions = {
    options = {
      assertions = mkOption {
        type = types.listOf types.unspecified;
        default = [ ];
      };
      warnings = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };
      networking.firewall.allowedTCPPorts = mkOption {
        type = types.listOf types.port;
        default = [ ];
      };
      networking.firewall.allowedUDPPorts = mkOption {
        type = types.listOf types.port;
        default = [ ];
      };
      systemd.services = mkOption {
        type = types.attrsOf types.anything;
        default = { };
      };
    };
  };

  package = {
    type = "derivation";
    outPath = packagePath;
    jre = jrePath;
  };

  scenarios = {
    default = {
      services.ncro.enable = true;
    };
    full = {
      services.ncro = {
        enable = true;
        openFirewall = true;
        netrcFile = "/etc/nix/netrc";
        jvmOptions = [
          "-Xmx512m"
          "-Dx=100%"
        ];
        environment.NCRO_LOG_LEVEL = "debug";
        settings = {
          server.listen = "0.0.0.0:80";
          server.first_byte_timeout = "5s";
          upstreams = [
            {
              url = "https://cache.nixos.org";
              priority = 10;
              public_key = "cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=";
            }
            {
              url = "http://attic.internal/main";
              filters = [
                {
                  action = "deny";
                  field = "name";
                  pattern = "*-source";
                }
              ];
              timeout.first_byte = "2s";
            }
          ];
          cache.race_deadline = "3s";
          cache.mass_query.per_upstream_max_inflight = 16;
          logging.format = "json";
          mesh.enabled = true;
          mesh.bind_addr = "[::]:7946";
        };
      };
    };
    loopback = {
      services.ncro = {
        enable = true;
        openFirewall = true;
        settings.server.listen = "127.0.0.1:8080";
      };
    };
    v6 = {
      services.ncro = {
        enable = true;
        openFirewall = true;
        settings.server.listen = "[::]:8080";
      };
    };
    bad = {
      services.ncro = {
        enable = true;
        settings.server.listen = "8080";
        settings.cache.db_path = "ncro.db";
        settings.upstreams = [
          {
            url = "https://cache.example";
            username = "u";
            password = "p";
          }
        ];
      };
    };
    empty = {
      services.ncro = {
        enable = true;
        settings.upstreams = [ ];
      };
    };
    disabled = { };
    # Rendered as the module renders it, then read by the real ncro (check-eval): typed
    # defaults, freeform keys at every level, an upstream list with filters and timeouts.
    smoke = {
      services.ncro = {
        enable = true;
        jvmOptions = [ "-Xmx256m" ];
        settings = {
          server.listen = "127.0.0.1:${smokePort}";
          server.first_byte_timeout = "5s";
          upstreams = [
            {
              url = "http://127.0.0.1:9";
              priority = 10;
              public_key = "cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=";
              filters = [
                {
                  action = "deny";
                  field = "name";
                  pattern = "*-source";
                }
              ];
              timeout.first_byte = "2s";
              redirect_hosts = [ "cache.internal" ];
            }
            { url = "http://127.0.0.1:10/main"; }
          ];
          cache = {
            db_path = "${smokeState}/ncro.db";
            race_deadline = "3s";
            memory_budget = "32MiB";
            mass_query.per_upstream_max_inflight = 16;
          };
          health.probe_interval = "1m";
          discovery.enabled = false;
        };
      };
    };
  };

  evaluated = lib.evalModules {
    modules = [
      stubOptions
      ../module.nix
      { services.ncro.package = lib.mkDefault package; }
      scenarios.${scenario}
    ];
    specialArgs = { inherit pkgs utils; };
  };

  inherit (evaluated) config;
  service = config.systemd.services.ncro or null;

  # The unit as NixOS writes it (nixos/lib/systemd-lib.nix), near enough for
  # `systemd-analyze verify`: booleans as true/false, a list as one line per element.
  renderValue =
    v:
    if v == true then
      "true"
    else if v == false then
      "false"
    else
      toString v;
  directive =
    key: value:
    if lib.isList value then map (v: "${key}=${renderValue v}") value else [ "${key}=${renderValue value}" ];
  unitText = lib.concatStringsSep "\n" (
    [
      "[Unit]"
      "Description=${service.description}"
    ]
    ++ map (u: "After=${u}") service.after
    ++ [ "[Service]" ]
    ++ lib.mapAttrsToList (
      name: value: ''Environment="${name}=${if name == "NCRO_CONFIG" then configPath else value}"''
    ) service.environment
    ++ lib.concatLists (lib.mapAttrsToList directive service.serviceConfig)
    ++ [ "[Install]" ]
    ++ map (t: "WantedBy=${t}") service.wantedBy
    ++ [ "" ]
  );
in
{
  inherit scenario;
  optionNames = builtins.attrNames (removeAttrs evaluated.options.services.ncro [ "_module" ]);
  # Every documented option below services.ncro, with its default as the manual shows it.
  optionDocs = map (o: {
    inherit (o) name;
    default = o.default.text or null;
  }) (lib.filter (o: o.visible && !o.internal) (lib.optionAttrSetToDocList evaluated.options.services.ncro));
  failedAssertions = map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);
  inherit (config) warnings;
  firewall = {
    tcp = config.networking.firewall.allowedTCPPorts;
    udp = config.networking.firewall.allowedUDPPorts;
  };
  # What NCRO_CONFIG points at: the YAML ncro reads (here as JSON, a subset of YAML).
  settings =
    if service == null then
      null
    else
      builtins.fromJSON (lib.removePrefix generatedMarker service.environment.NCRO_CONFIG);
  environment = if service == null then null else service.environment;
  serviceConfig = if service == null then null else service.serviceConfig;
  unit = if service == null then null else removeAttrs service [ "serviceConfig" "environment" ];
  unitText = if service == null then null else unitText;
}
