# ncro's flake. It sits at the root of the repository (not in nix/) so that
# `inputs.ncro.url = "github:<owner>/ncro"` and `nix build github:<owner>/ncro` work without
# `?dir=nix`, and so that the package's source (the Maven reactor at the root) lies inside
# the flake. The Nix files themselves are in nix/. See docs/nixos.md.
{
  description = "ncro, the Nix Cache Route Optimizer: an HTTP proxy in front of Nix binary caches, on Jetty 12";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
        "x86_64-darwin"
        "aarch64-darwin"
      ];
      forAllSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      packages = forAllSystems (pkgs: {
        ncro = pkgs.callPackage ./nix/package.nix { };
        default = self.packages.${pkgs.stdenv.hostPlatform.system}.ncro;
      });

      overlays.default = final: _prev: {
        ncro = final.callPackage ./nix/package.nix { };
      };

      # services.ncro, with the package of this flake's nixpkgs (mvnHash is the hash of
      # the dependencies that nixpkgs' Maven downloads).
      nixosModules.ncro =
        { lib, pkgs, ... }:
        {
          imports = [ ./nix/module.nix ];
          services.ncro.package = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.ncro;
        };
      nixosModules.default = self.nixosModules.ncro;

      checks = forAllSystems (
        pkgs:
        {
          package = self.packages.${pkgs.stdenv.hostPlatform.system}.ncro;
        }
        // lib.optionalAttrs pkgs.stdenv.hostPlatform.isLinux {
          nixos = pkgs.testers.runNixOSTest ./nix/test.nix;
        }
      );

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          packages = [
            pkgs.maven
            pkgs.jdk17_headless
          ];
        };
      });
    };
}
