"""The device agent: edgekit's runtime layer (`edgekit.runtimes`) driven from a small command
line, run in a fresh process on the host, on a board over SSH or adb, or inside an emulated
arm64 root filesystem. `bundle.agent_bundle()` packs it, with the device-safe core it imports,
into one zipapp that needs only Python ≥ 3.9, numpy and the board's runtime."""
