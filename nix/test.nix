# NixOS test (the flake's checks.<system>.nixos): ncro from services.ncro in front of a
# signed binary cache that nginx serves as static files; a client realises a store path
# that only that cache has, through ncro, into an empty store.
#
#   nix build .#checks.x86_64-linux.nixos
#
# Not run where this was written (no nixpkgs there): see docs/nixos.md.
{ pkgs, ... }:

let
  # A key pair made for this test only (nix-store --generate-binary-cache-key).
  secretKey = "ncro-test-1:koz1G8MRk5oUdv/w4b6BVs1bQ9AfkeWfkUlOqwAdmsQqs654yOjixE+z0UvdUaI4fhODuVNAluVv7EP0ATUjGA==";
  publicKey = "ncro-test-1:KrOueMjo4sRPs9FL3VGiOH4Tg7lTQJblb+xD9AE1Ixg=";
in
{
  name = "ncro";

  nodes = {
    upstream =
      { pkgs, ... }:
      {
        services.nginx = {
          enable = true;
          virtualHosts.upstream = {
            default = true;
            root = "/srv/cache";
          };
        };
        networking.firewall.allowedTCPPorts = [ 80 ];
        # hello is in this machine's store (and nowhere else): the cache is made of it
        system.extraDependencies = [ pkgs.hello ];
        nix.settings.experimental-features = [ "nix-command" ];
        environment.etc."ncro-test/secret-key".text = secretKey;
      };

    ncro =
      { ... }:
      {
        imports = [ ./module.nix ];
        services.ncro = {
          enable = true;
          openFirewall = true;
          jvmOptions = [ "-Xmx256m" ];
          settings = {
            server.listen = ":8080";
            upstreams = [
              {
                url = "http://upstream";
                priority = 10;
                public_key = publicKey;
              }
            ];
          };
        };
        virtualisation.memorySize = 1024;
      };

    client =
      { lib, ... }:
      {
        nix.settings = {
          substituters = lib.mkForce [ "http://ncro:8080" ];
          trusted-public-keys = lib.mkForce [ publicKey ];
        };
      };
  };

  testScript = ''
    start_all()

    with subtest("the upstream serves a signed binary cache of hello's closure"):
        upstream.wait_for_unit("nginx.service")
        upstream.succeed(
            "nix copy --to 'file:///srv/cache?secret-key=/etc/ncro-test/secret-key' ${pkgs.hello}",
            "chmod -R a+rX /srv/cache",
        )
        upstream.wait_for_open_port(80)

    with subtest("ncro starts as a hardened dynamic user"):
        ncro.wait_for_unit("ncro.service")
        ncro.wait_for_open_port(8080)
        ncro.succeed("ps -o user= -p $(systemctl show -p MainPID --value ncro.service) | grep -qx ncro")
        ncro.succeed("systemctl show -p NoNewPrivileges --value ncro.service | grep -qx yes")
        client.wait_until_succeeds("curl -sf http://ncro:8080/nix-cache-info | grep -q 'Priority: 30'")
        client.succeed("curl -sf http://ncro:8080/health | grep -q sqlite")

    with subtest("a path only the upstream has is substituted through ncro"):
        client.succeed("nix-store --realise ${pkgs.hello} --store /root/other-store >&2")
        client.succeed("test -x /root/other-store${pkgs.hello}/bin/hello")
        ncro.succeed("curl -sf localhost:8080/metrics | grep -q '^ncro_upstream_race_wins_total{.*} [1-9]'")

    with subtest("routes are kept in the state directory across a restart"):
        ncro.succeed("test -s /var/lib/private/ncro/ncro.db")
        ncro.systemctl("restart ncro.service")
        ncro.wait_for_open_port(8080)
        ncro.wait_until_succeeds("curl -sf localhost:8080/health | grep -Eq '\"routes\" : [1-9]'")
  '';
}
