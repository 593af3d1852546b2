# ncro as a Nix package: the Maven build's ready Jetty base plus the stock jetty-home.
#
#   $out/share/ncro/jetty-home   jetty-home 12.1.12 from Maven Central (fetchurl, pinned)
#   $out/share/ncro/jetty-base   jetty-base/target/jetty-base of the Maven build
#   $out/bin/ncro                java -jar jetty-home/start.jar jetty.home=… jetty.base=…
#
# The base lives in the read-only store, so a relative cache.db_path (the default,
# "ncro.db", resolved in the Jetty base) cannot be written: give an absolute
# cache.db_path or NCRO_DB_PATH, else ncro runs with routes in memory only and
# /health says "degraded". The NixOS module (module.nix) does that for you.
{
  lib,
  maven,
  jdk17_headless,
  fetchurl,
  makeWrapper,
}:

let
  jettyVersion = "12.1.12";

  # The same artifact the Maven build unpacks into jetty-base/target; fetched here on
  # its own so that the runtime jetty-home is pinned by a hash Nix checks.
  jettyHome = fetchurl {
    url = "https://repo1.maven.org/maven2/org/eclipse/jetty/jetty-home/${jettyVersion}/jetty-home-${jettyVersion}.tar.gz";
    hash = "sha256-7sBxMaaCvL+7BBEjKTKnIZa1jxh0EoYpYq8Hreu3d7w=";
  };

  # Java 17 is the minimum (maven.compiler.release 17); any later JDK runs it too.
  jre = jdk17_headless;
in
maven.buildMavenPackage {
  pname = "ncro";
  version = "0.1.0-SNAPSHOT"; # the version in pom.xml

  # Only what the Maven reactor reads; never a local target/ directory.
  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.difference
      (lib.fileset.unions [
        ../pom.xml
        ../ncro-jetty-module
        ../ncro-servlet
        ../jetty-base
        ../bench/pom.xml
      ])
      (lib.fileset.unions (map lib.fileset.maybeMissing [
        ../ncro-jetty-module/target
        ../ncro-servlet/target
        ../jetty-base/target
      ]));
  };

  # The fixed-output hash of the Maven dependencies (the local repository the build
  # downloads). It cannot be computed without nixpkgs: build once, and replace this
  # placeholder with the hash Nix reports ("got: sha256-…").
  mvnHash = lib.fakeHash;

  mvnJdk = jdk17_headless;

  # Build the Jetty base and what it needs; the benchmark module is left out.
  mvnParameters = "-pl jetty-base -am";

  # The tests run in CI (.ci/run). Several are timing-sensitive fault tests that would
  # make a loaded builder flaky, and the end-to-end ones need the Nix client. Without
  # them both the dependency fetch and the build pass -DskipTests, so they agree on
  # which plugins are needed.
  doCheck = false;

  nativeBuildInputs = [ makeWrapper ];

  installPhase = ''
    runHook preInstall

    share=$out/share/ncro
    mkdir -p $share/jetty-home $out/bin
    cp -r jetty-base/target/jetty-base $share/jetty-base
    tar -xzf ${jettyHome} -C $share/jetty-home --strip-components=1
    test -f $share/jetty-home/start.jar
    test -f $share/jetty-base/webapps/ncro.war

    # JVM options: the standard JDK_JAVA_OPTIONS environment variable.
    makeWrapper ${jre}/bin/java $out/bin/ncro \
      --add-flags "-jar $share/jetty-home/start.jar" \
      --add-flags "jetty.home=$share/jetty-home" \
      --add-flags "jetty.base=$share/jetty-base"

    runHook postInstall
  '';

  passthru = {
    inherit jre jettyHome jettyVersion;
  };

  meta = {
    description = "Nix Cache Route Optimizer: an HTTP proxy in front of Nix binary caches, as a Jetty 12 module";
    mainProgram = "ncro";
    platforms = lib.platforms.unix;
    sourceProvenance = with lib.sourceTypes; [
      fromSource
      binaryBytecode # jetty-home and the Maven dependencies are prebuilt jars
      binaryNativeCode # sqlite-jdbc carries its JNI library
    ];
  };
}
