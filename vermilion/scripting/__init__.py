"""Lua scripting (Redis's eval.c, script_lua.c, script.c) on lupa's Lua 5.1.

bootstrap.lua   the script environment: read-only globals, the redis table, the error
                handler, the SCRIPT KILL hook (Lua side)
runtime.py      the Lua state and the Python half of the redis library
convert.py      reply values ⇄ Lua values, with Redis's conversion rules
library.py      Redis 7.0 functions: libraries, FUNCTION LOAD/DUMP/RESTORE, RDB hooks
engine.py       the scripts cache, running a script (worker thread, BUSY, SCRIPT KILL),
                propagation of its writes
luajson.py luabit.py luamsgpack.py luastruct.py
                cjson, bit, cmsgpack and struct, in Python (lupa loads no C modules)
"""
