# The option table of docs/nixos.md lists exactly the module's options, each with the
# default the module declares (multi-line defaults and options without one excepted).
# Evaluates to "ok" or fails naming the difference.
{
  lib,
  docs ? ../../docs/nixos.md,
}:

let
  declared = (import ./eval.nix { inherit lib; }).optionDocs;

  rows = lib.filter (r: r != null) (
    map (builtins.match "[|] `(services[.]ncro[.][^`]+)` [|] (.*) [|] .*") (lib.splitString "\n" (builtins.readFile docs))
  );
  table = lib.listToAttrs (map (r: lib.nameValuePair (lib.elemAt r 0) (lib.elemAt r 1)) rows);

  names = map (o: o.name) declared;
  missing = lib.filter (n: !(table ? ${n})) names;
  extra = lib.filter (n: !(lib.elem n names)) (builtins.attrNames table);
  wrongDefaults = lib.filter (
    o: o.default != null && !(lib.hasInfix "\n" o.default) && table ? ${o.name} && table.${o.name} != "`${o.default}`"
  ) declared;
in
if missing != [ ] then
  throw "docs/nixos.md: the option table lacks ${lib.concatStringsSep ", " missing}"
else if extra != [ ] then
  throw "docs/nixos.md: the option table lists options the module does not have: ${lib.concatStringsSep ", " extra}"
else if wrongDefaults != [ ] then
  throw "docs/nixos.md: wrong defaults: ${lib.concatMapStringsSep "; " (o: "${o.name} is `${o.default}`, the table says ${table.${o.name}}") wrongDefaults}"
else
  "ok"
