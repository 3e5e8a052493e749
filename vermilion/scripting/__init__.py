"""Lua scripting (Redis's eval.c, script_lua.c, script.c) on lupa's Lua 5.1.

runtime.py   the Lua state: sandboxed globals, the redis.* API, cjson and bit
convert.py   reply values ⇄ Lua values, with Redis's conversion rules
engine.py    the script cache, running a script (worker thread, BUSY, SCRIPT KILL)
"""
