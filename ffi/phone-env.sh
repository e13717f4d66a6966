# The environment of the phone library's builds, sourced from the repository's root before
# them (ffi/README.md) and by ffi/phone-size.sh:
#
#   source ffi/phone-env.sh
#
# `LIBSQLITE3_FLAGS` and `TARGET_CFLAGS` only reach C code compiled for the phone targets
# (`TARGET_CFLAGS` is read by the cc crate when cross-compiling); never export them for
# the relay, whose SQLite needs JSON (`json_each`).

# SQLite (bundled by libsqlite3-sys) without what the core's store never uses: full-text
# search, R-trees, JSON, statistics and ANALYZE's tables, extensions, shared cache,
# deprecated APIs, date and time functions, UTF-16, the authorizer, tracing, incremental
# blob I/O, auto-vacuum, memory-mapped I/O, test hooks, the list of compile options.
# libsqlite3-sys applies these after its own defaults. Only options that leave SQLite's
# grammar alone work with its amalgamation (`SQLITE_OMIT_ANALYZE` and
# `SQLITE_OMIT_WINDOWFUNC` do not); ffi/phone-size.sh links with `-z defs`, so one that
# leaves a function undefined fails the build, and CI runs the Kotlin and Python tests
# on the library it builds.
export LIBSQLITE3_FLAGS="-USQLITE_ENABLE_FTS3 -USQLITE_ENABLE_FTS3_PARENTHESIS \
-USQLITE_ENABLE_FTS5 -USQLITE_ENABLE_RTREE -USQLITE_ENABLE_DBSTAT_VTAB \
-USQLITE_ENABLE_STAT4 -USQLITE_SOUNDEX -USQLITE_ENABLE_COLUMN_METADATA \
-USQLITE_ENABLE_JSON1 -DSQLITE_OMIT_JSON \
-USQLITE_ENABLE_LOAD_EXTENSION -DSQLITE_OMIT_LOAD_EXTENSION \
-DSQLITE_OMIT_DEPRECATED -DSQLITE_OMIT_SHARED_CACHE -DSQLITE_OMIT_PROGRESS_CALLBACK \
-DSQLITE_DEFAULT_MEMSTATUS=0 -DSQLITE_DQS=0 -DSQLITE_LIKE_DOESNT_MATCH_BLOBS \
-DSQLITE_MAX_EXPR_DEPTH=0 -DSQLITE_USE_ALLOCA \
-DSQLITE_OMIT_DATETIME_FUNCS -DSQLITE_OMIT_UTF16 -DSQLITE_OMIT_AUTHORIZATION \
-DSQLITE_OMIT_TRACE -DSQLITE_OMIT_INTROSPECTION_PRAGMAS -DSQLITE_OMIT_GET_TABLE \
-DSQLITE_OMIT_COMPLETE -DSQLITE_OMIT_TCL_VARIABLE -DSQLITE_OMIT_INCRBLOB \
-DSQLITE_OMIT_XFER_OPT -DSQLITE_OMIT_AUTOVACUUM -DSQLITE_UNTESTABLE \
-DSQLITE_OMIT_COMPILEOPTION_DIAGS -DSQLITE_MAX_MMAP_SIZE=0"

# No unwind tables for the C code (SQLite, ring's C): no Rust panic unwinds through it
# (the store registers no SQL callbacks), so they only cost size. ring's assembly keeps its
# own unwind directives; Rust code keeps its tables (a panic becomes an error).
export TARGET_CFLAGS="-fno-asynchronous-unwind-tables -fno-unwind-tables"

# Source paths in panic messages relative to the crate registry and to this repository:
# no build machine's paths in the app, and 16 KB less. Cargo joins these per-target flags
# with `.cargo/config.toml`'s.
PHONE_PATH_REMAP="--remap-path-prefix=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/="
for source_dir in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/; do
    PHONE_PATH_REMAP="$PHONE_PATH_REMAP --remap-path-prefix=$source_dir="
done
for triple in AARCH64_LINUX_ANDROID ARMV7_LINUX_ANDROIDEABI X86_64_LINUX_ANDROID \
    I686_LINUX_ANDROID AARCH64_APPLE_IOS AARCH64_APPLE_IOS_SIM X86_64_APPLE_IOS; do
    export "CARGO_TARGET_${triple}_RUSTFLAGS=$PHONE_PATH_REMAP"
done
unset source_dir triple
