# The environment of the phone library's builds, sourced before them (ffi/README.md) and
# by ffi/phone-size.sh:
#
#   source ffi/phone-env.sh
#
# Both variables only reach C code compiled for the phone targets (`TARGET_CFLAGS` is read
# by the cc crate when cross-compiling); never export them for the relay, whose SQLite
# needs JSON (`json_each`).

# SQLite (bundled by libsqlite3-sys) without what the core's store never uses: full-text
# search, R-trees, JSON, statistics, extensions, shared cache, deprecated APIs.
# libsqlite3-sys applies these after its own defaults.
export LIBSQLITE3_FLAGS="-USQLITE_ENABLE_FTS3 -USQLITE_ENABLE_FTS3_PARENTHESIS \
-USQLITE_ENABLE_FTS5 -USQLITE_ENABLE_RTREE -USQLITE_ENABLE_DBSTAT_VTAB \
-USQLITE_ENABLE_STAT4 -USQLITE_SOUNDEX -USQLITE_ENABLE_COLUMN_METADATA \
-USQLITE_ENABLE_JSON1 -DSQLITE_OMIT_JSON \
-USQLITE_ENABLE_LOAD_EXTENSION -DSQLITE_OMIT_LOAD_EXTENSION \
-DSQLITE_OMIT_DEPRECATED -DSQLITE_OMIT_SHARED_CACHE -DSQLITE_OMIT_PROGRESS_CALLBACK \
-DSQLITE_DEFAULT_MEMSTATUS=0 -DSQLITE_DQS=0 -DSQLITE_LIKE_DOESNT_MATCH_BLOBS \
-DSQLITE_MAX_EXPR_DEPTH=0 -DSQLITE_USE_ALLOCA"

# No unwind tables for the C code (SQLite, ring's C): no Rust panic unwinds through it
# (the store registers no SQL callbacks), so they only cost size. ring's assembly keeps its
# own unwind directives; Rust code keeps its tables (a panic becomes an error).
export TARGET_CFLAGS="-fno-asynchronous-unwind-tables -fno-unwind-tables"
