# The phone library's SQLite (bundled by libsqlite3-sys) without what the core's store
# never uses: full-text search, R-trees, JSON, extensions, shared cache, deprecated APIs.
# Sourced by ffi/phone-size.sh and before the Android/iOS builds (ffi/README.md):
#
#   source ffi/phone-sqlite-flags.sh
#
# libsqlite3-sys adds these after its own defaults; they apply to every crate built with
# them in the environment, so never to the relay (which calls `json_each`).
export LIBSQLITE3_FLAGS="-USQLITE_ENABLE_FTS3 -USQLITE_ENABLE_FTS3_PARENTHESIS \
-USQLITE_ENABLE_FTS5 -USQLITE_ENABLE_RTREE -USQLITE_ENABLE_DBSTAT_VTAB \
-USQLITE_ENABLE_STAT4 -USQLITE_SOUNDEX -USQLITE_ENABLE_COLUMN_METADATA \
-USQLITE_ENABLE_JSON1 -DSQLITE_OMIT_JSON \
-USQLITE_ENABLE_LOAD_EXTENSION -DSQLITE_OMIT_LOAD_EXTENSION \
-DSQLITE_OMIT_DEPRECATED -DSQLITE_OMIT_SHARED_CACHE -DSQLITE_OMIT_PROGRESS_CALLBACK \
-DSQLITE_DEFAULT_MEMSTATUS=0 -DSQLITE_DQS=0 -DSQLITE_LIKE_DOESNT_MATCH_BLOBS \
-DSQLITE_MAX_EXPR_DEPTH=0 -DSQLITE_USE_ALLOCA"
