-- Builds the script environment of one Lua state (Redis 7.0's scriptingInit and
-- luaSetTableProtectionRecursively, emulated in stock Lua 5.1).
--
-- Redis 7.0 patches Lua with read-only tables: the globals and every library are
-- frozen, writing a global fails with "Attempt to modify a readonly table" and reading
-- an undefined one with "Script attempted to access nonexistent global variable".
-- Stock Lua cannot freeze a table's existing keys, so scripts see *proxies*: empty
-- tables whose __index reads the real table and whose __newindex refuses. pairs,
-- next, rawget, rawset and setmetatable see through (or refuse on) the proxies.
local py = ...
local dbg = debug

-- The frame an error is reported at, from the given stack level: the erring function,
-- or its caller when it is a C function (as Redis's __redis__err__handler does),
-- skipping this file's own Lua helpers (Redis has those in C).
local BOOT = dbg.getinfo(1, "S").source
local function user_frame(level)
    local i = dbg.getinfo(level, "nSl")
    if i and i.what == "C" then
        level = level + 1
        i = dbg.getinfo(level, "nSl")
    end
    while i and (i.source == BOOT or i.what == "C") do
        level = level + 1
        i = dbg.getinfo(level, "nSl")
    end
    return i
end

-- A Python exception raised through Lua: redis.call's error table, or a message that
-- gets the script position like luaL_error's (cjson's errors).
local function unwrap_error(err)
    local value, positional = py.unwrap(err)
    if positional then
        local i = user_frame(3)
        if i then value = i.short_src .. ":" .. i.currentline .. ": " .. value end
    end
    return value
end
local G = {}            -- the real globals a script reads through the _G proxy
local real_of = setmetatable({}, {__mode = "k"})   -- proxy -> real table

local READONLY = "Attempt to modify a readonly table"

local function refuse() error(READONLY, 2) end

-- What getmetatable() shows of a protected table: itself read-only, so that
-- `getmetatable(_G).__index = {}` fails as in Redis.
local shown_mt = setmetatable({}, {__newindex = refuse, __metatable = false})
real_of[shown_mt] = {}

local function protect(real)
    local proxy = setmetatable({}, {__index = real, __newindex = refuse, __metatable = shown_mt})
    real_of[proxy] = real
    return proxy
end

local function unwrap(t) return real_of[t] or t end

-- Libraries, as Redis 7.0 loads them (no os, io, package, debug for scripts).
local libs = {string = string, math = math, table = table, coroutine = coroutine}
for name, lib in pairs(libs) do G[name] = protect(lib) end
for _, name in ipairs({"assert", "collectgarbage", "error", "gcinfo", "getmetatable",
                       "ipairs", "pcall", "rawequal", "select",
                       "tonumber", "tostring", "type", "unpack", "xpcall"}) do
    G[name] = _G[name]
end
G._VERSION = _VERSION
local raw_next, raw_rawget, raw_rawset, raw_setmt = next, rawget, rawset, setmetatable
G.next = function(t, k) return raw_next(unwrap(t), k) end
G.pairs = function(t) return raw_next, unwrap(t), nil end
G.rawget = function(t, k) return raw_rawget(unwrap(t), k) end
G.rawset = function(t, k, v)
    if real_of[t] then error(READONLY, 0) end
    return raw_rawset(t, k, v)
end
-- Redis 7.0's pcall hands the script the message of an error table, not the table.
local raw_pcall = pcall
local function pcall_result(ok, ...)
    if ok then return true, ... end
    local err = ...
    -- Caught by the script, a library's message has no position (as in Redis).
    if type(err) == "userdata" then err = py.unwrap(err) end
    if type(err) == "table" then
        local msg = raw_rawget(err, "err")
        if type(msg) == "string" or type(msg) == "number" then err = msg end
    end
    return false, err
end
G.pcall = function(...) return pcall_result(raw_pcall(...)) end
G.setmetatable = function(t, mt)
    if real_of[t] then error(READONLY, 0) end
    return raw_setmt(t, mt)
end

-- The redis library. redis.call and redis.pcall hand their arguments to Python, in
-- one table when there are many: a call into Python cannot take more than ~7997
-- arguments (lupa's own Lua C-stack slots on top of LUAI_MAXCSTACK = 8000), and
-- `redis.call("lpush", "l", unpack(a))` may bring 8001. Scripts are compiled without
-- tail calls (tailcalls.py), so `return redis.call(...)` keeps the script's frame as
-- a call into Redis's C function does, and the error handler still finds the line.
-- A failing call raises a Python ScriptError carrying the error table, which unwrap()
-- turns back into that table.
local select = select
local py_call, py_pcall, py_call_table, py_pcall_table =
    py.call, py.pcall, py.call_table, py.pcall_table
local MANY_ARGS = 250   -- above this, one table (lupa builds its argument tuple in O(n²))
-- A status reply comes back from Python as (text, true): its {ok=} table is made
-- here, cheaper than from Python.
local redis = {}
redis.call = function(...)
    local n = select("#", ...)
    local reply, status
    if n > MANY_ARGS then
        reply, status = py_call_table({...}, n)
    else
        reply, status = py_call(...)
    end
    if status then return {ok = reply} end
    return reply
end
redis.pcall = function(...)
    local n = select("#", ...)
    local reply, status
    if n > MANY_ARGS then
        reply, status = py_pcall_table({...}, n)
    else
        reply, status = py_pcall(...)
    end
    if status then return {ok = reply} end
    return reply
end
redis.sha1hex = py.sha1hex
redis.log = py.log
redis.setresp = py.setresp
redis.set_repl = py.set_repl
redis.acl_check_cmd = py.acl_check_cmd
-- luaPushErrorBuff(): "-CODE msg" keeps its code, anything else gets ERR; the message
-- is trimmed of \r and \n at both ends.
local function error_table(buf)
    local code, msg
    if buf:sub(1, 1) == "-" then
        local space = buf:find(" ", 1, true)
        if space then
            code, msg = buf:sub(2, space - 1), buf:sub(space + 1)
        else
            code, msg = "ERR", buf:sub(2)
        end
    else
        code, msg = "ERR", buf
    end
    msg = msg:gsub("^[\r\n]+", ""):gsub("[\r\n]+$", "")
    return {err = code .. " " .. msg}
end
-- Bad arguments give an error *reply* (returned, not raised), as in script_lua.c.
local BAD_ARGS = "wrong number or type of arguments"
redis.error_reply = function(msg, ...)
    if type(msg) ~= "string" or select("#", ...) > 0 then return error_table(BAD_ARGS) end
    msg = msg:match("^[^%z]*")   -- lua_tostring() read as a C string
    if msg:sub(1, 1) ~= "-" then msg = "-" .. msg end
    return error_table(msg)
end
redis.status_reply = function(msg, ...)
    if type(msg) ~= "string" or select("#", ...) > 0 then return error_table(BAD_ARGS) end
    return {ok = msg}
end
redis.replicate_commands = function() return true end
-- The Lua debugger's value dumps (ldbCatStackValueRec()): strings as sdscatrepr()
-- writes them, numbers with %g, tables as arrays or as [key]=value lists.
local ldb_on = false    -- a SCRIPT DEBUG session runs the script (ldb.active)
local REPR_ESCAPES = {["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t", ["\a"] = "\\a",
                      ["\b"] = "\\b", ['"'] = '\\"', ["\\"] = "\\\\"}
local function repr_char(c)
    return REPR_ESCAPES[c] or string.format("\\x%02x", c:byte())
end
local raw_next_ = next
local function ldb_repr(v, level)
    if level == 10 then return "<max recursion level reached! Nested table?>" end
    level = level + 1
    local t = type(v)
    if t == "string" then
        return '"' .. (v:gsub('[%z\1-\31"\\\127-\255]', repr_char)) .. '"'
    elseif t == "boolean" then
        return v and "true" or "false"
    elseif t == "number" then
        return string.format("%g", v)
    elseif t == "nil" then
        return "nil"
    elseif t == "table" then
        local expected, is_array = 1, true
        local as_array, as_map = {}, {}
        local k, val = raw_next_(v)
        while k ~= nil do
            if is_array and (type(k) ~= "number" or k ~= expected) then is_array = false end
            as_array[#as_array + 1] = ldb_repr(val, level)
            as_map[#as_map + 1] = "[" .. ldb_repr(k, level) .. "]=" .. ldb_repr(val, level)
            expected = expected + 1
            k, val = raw_next_(v, k)
        end
        return "{" .. table.concat(is_array and as_array or as_map, "; ") .. "}"
    end
    local names = {["function"] = "function", userdata = "userdata", thread = "thread"}
    return '"' .. (names[t] or "unknown") .. "@" .. (tostring(v):match("0x%x+") or "0x0") .. '"'
end
local py_ldb_debug, py_ldb_breakpoint = py.ldb_debug, py.ldb_breakpoint
-- redis.breakpoint(): stop at the next line, as a breakpoint there would.
redis.breakpoint = function()
    if not ldb_on then return false end
    py_ldb_breakpoint()
    return true
end
-- redis.debug(): log the values, comma-separated, in the debugger console.
redis.debug = function(...)
    if not ldb_on then return end
    local parts = {}
    for i = 1, select("#", ...) do parts[i] = ldb_repr((select(i, ...)), 0) end
    py_ldb_debug(table.concat(parts, ", "))
end
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3
redis.REDIS_VERSION = py.version
redis.REDIS_VERSION_NUM = py.version_num
G.redis = protect(redis)

-- cjson, cmsgpack, struct and bit: implemented in Python (lupa's Lua has no C
-- modules to load).
G.cjson = protect(py.cjson)
G.bit = protect(py.bit)
G.cmsgpack = protect(py.cmsgpack)
G.struct = protect(py.struct)

-- __redis__err__handler: errors become {err=, source=, line=}; the position is the
-- script line that was running (skipping our wrappers and C functions).
local running = false   -- the script is executing (the count hook may kill it)

local function err_handler(err)
    running = false   -- the script is over: the kill hook must not fire again
    local i = user_frame(2)
    if type(err) == "userdata" then err = unwrap_error(err) end
    if type(err) ~= "table" then err = {err = "ERR " .. tostring(err)} end
    if i and i.currentline and i.currentline >= 0 then
        err.source = i.source
        err.line = i.currentline
    end
    return err
end
G.__redis__err__handler = err_handler

-- The Python functions are userdata to Lua; type() (in Python, so that it stays a
-- C function for the error position) reports them as the functions they are in Redis.
G.type = py.type

local env = protect(G)
G._G = env

-- Code loaded by a script runs in the script's environment (stock Lua would give it
-- the real globals, with os and io), and precompiled bytecode is refused: it can
-- break out of any sandbox (Redis 7.0 refuses binary chunks too).
local raw_loadstring, raw_load, raw_setfenv = loadstring, load, setfenv
local dump, without_tail_calls = string.dump, py.without_tail_calls
-- A compiled chunk, reloaded without tail calls (see the redis library above).
local function no_tail_calls(f)
    return raw_loadstring(without_tail_calls(dump(f))) or f
end
local function sandboxed(f, err)
    if f then
        f = no_tail_calls(f)
        raw_setfenv(f, env)
    end
    return f, err
end
G.loadstring = function(s, name)
    if type(s) == "string" and s:byte(1) == 27 then return nil, "bad binary format" end
    return sandboxed(raw_loadstring(s, name))
end
G.load = function(reader, name)
    local first = true
    local function guarded()
        local piece = reader()
        if first and type(piece) == "string" and piece ~= "" then
            first = false
            if piece:byte(1) == 27 then error("bad binary format", 0) end
        end
        return piece
    end
    return sandboxed(raw_load(guarded, name))
end
-- Undefined globals are an error, not nil (Redis's __index on _G).
raw_setmt(G, {__index = function(_, k)
    error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
end})

local loadstring, setfenv, xpcall, sethook = loadstring, setfenv, xpcall, dbg.sethook
local interrupt = py.interrupt
local KILLED = "ERR Script killed by user with SCRIPT KILL..."

-- luaMaskCountHook: every 100000 instructions the engine may let the loop serve other
-- clients (past busy-reply-threshold); it answers true when SCRIPT KILL asked.
-- The hook stays set between scripts (it does nothing while none runs), so that a
-- script's start costs no sethook.
local HOOK_EVERY = 100000
local hook_every_instruction = false
local function hook()
    if running and interrupt() then
        -- Fire on every instruction from now on, so a pcall in the script cannot
        -- swallow the kill.
        hook_every_instruction = true
        sethook(hook, "", 1)
        error({err = KILLED}, 0)
    end
end
local function set_run_hook()
    hook_every_instruction = false
    sethook(hook, "", HOOK_EVERY)
end
set_run_hook()

local shape  -- below

-- The script's outcome for Python: (true, value), (true, nil, a table's shape...) or
-- (false, error).
local function ended(ok, res)
    running = false
    if hook_every_instruction then set_run_hook() end
    if ok and type(res) == "table" then return ok, nil, shape(res) end
    return ok, res
end

-- KEYS and ARGV from (nkeys, keys..., args...): for the usual few arguments, one call
-- with plain values is cheaper than two tables made from Python.
-- The usual numbers of keys (none, one, all) are made by table constructors.
local function split(nk, ...)
    local n = select("#", ...)
    if nk == 0 then return {}, {...} end
    if nk == n then return {...}, {} end
    if nk == 1 then return {(...)}, {select(2, ...)} end
    local all = {...}
    local keys, argv = {}, {}
    for i = 1, nk do keys[i] = all[i] end
    for i = nk + 1, n do argv[i - nk] = all[i] end
    return keys, argv
end

local api = {}
-- The script's function, and its compiled code as it came (for tailcalls.short_chunk()).
function api.compile(body)
    local f, err = loadstring(body, "@user_script")
    if not f then return nil, err, nil end
    local code = dump(f)
    f = raw_loadstring(without_tail_calls(code)) or f
    setfenv(f, env)
    return f, nil, code
end
local function run(f, keys, argv)
    -- (G's metatable has no __newindex: these are raw sets.)
    G.KEYS = keys
    G.ARGV = argv
    running = true
    return ended(xpcall(f, err_handler))
end
api.run = run
function api.run_args(f, nk, ...)
    if nk == 1 and select("#", ...) == 2 then
        -- EVALSHA sha 1 key arg, the usual call: run() and split() in one frame.
        local key, arg = ...
        G.KEYS = {key}
        G.ARGV = {arg}
        running = true
        return ended(xpcall(f, err_handler))
    end
    return run(f, split(nk, ...))
end
-- A debugged EVAL (SCRIPT DEBUG SYNC): luaLdbLineHook on every line of the script, and
-- every 100000 instructions for its timeout, instead of the kill hook.
local py_ldb_line = py.ldb_line
local function ldb_hook(event, line)
    local i = dbg.getinfo(2, "Sl")
    if not i or not i.short_src:find("user_script", 1, true) then return end
    local err = py_ldb_line(event == "count", i.currentline)
    if err then error(err, 0) end
end
function api.run_debug(f, keys, argv)
    G.KEYS = keys
    G.ARGV = argv
    running = true
    ldb_on = true
    sethook(ldb_hook, "l", HOOK_EVERY)
    local ok, res = xpcall(f, err_handler)
    ldb_on = false
    set_run_hook()
    return ended(ok, res)
end
-- The level of the script's running frame, seen from the caller of this function (the
-- debugger's commands run inside the hook, a few frames above the script's).
local function ldb_script_level()
    local level = 3
    while true do
        local i = dbg.getinfo(level, "S")
        if not i then return nil end
        if i.short_src:find("user_script", 1, true) then return level - 1 end
        level = level + 1
    end
end
-- ldbPrint(): the first local of that name from the running frame outwards, then the
-- KEYS and ARGV globals; nil when there is none.
function api.ldb_print(name)
    local level = ldb_script_level()
    while level and dbg.getinfo(level, "f") do
        local i = 1
        while true do
            local n, v = dbg.getlocal(level, i)
            if n == nil then break end
            if n == name then return ldb_repr(v, 0) end
            i = i + 1
        end
        level = level + 1
    end
    if name == "ARGV" or name == "KEYS" then return ldb_repr(G[name], 0) end
    return nil
end
-- ldbPrintAll(): the running frame's locals, as name, value, name, value...
function api.ldb_print_all()
    local out = {}
    local level = ldb_script_level()
    if not level then return out end
    local i = 1
    while true do
        local n, v = dbg.getlocal(level, i)
        if n == nil then break end
        if not n:find("(*temporary)", 1, true) then
            out[#out + 1] = n
            out[#out + 1] = ldb_repr(v, 0)
        end
        i = i + 1
    end
    return out
end
-- ldbTrace(): the script's frames, as "In|From <name>:", line, ...
function api.ldb_trace()
    local out = {}
    local base = ldb_script_level()
    if not base then return out end
    local level = base
    while true do
        local i = dbg.getinfo(level, "Snl")
        if not i then break end
        if i.short_src:find("user_script", 1, true) then
            out[#out + 1] = (level == base and "In " or "From ") .. (i.name or "top level") .. ":"
            out[#out + 1] = i.currentline
        end
        level = level + 1
    end
    return out
end
-- ldbEval(): the code as an expression ("return " prepended), else as a statement.
function api.ldb_eval(code)
    local f = raw_loadstring("return " .. code, "@ldb_eval")
    if not f then
        local err
        f, err = raw_loadstring(code, "@ldb_eval")
        if not f then return false, err end
    end
    setfenv(f, env)
    local ok, res = pcall(f)
    if not ok then
        local t = type(res)
        return false, (t == "string" or t == "number") and tostring(res) or "(null)"
    end
    return true, ldb_repr(res, 0)
end
-- Functions (function_lua.c). A library's code runs once, at FUNCTION LOAD, in a
-- restricted environment that only has `redis` with register_function, log and the
-- version (Redis swaps the globals' __index to its library API table); the functions
-- it registers run later with the full script environment. One environment table per
-- state whose __index is switched, as Redis switches its globals' metatable.
local lib_mt = {__index = env, __newindex = refuse, __metatable = shown_mt}
local lib_env = setmetatable({}, lib_mt)
local function nonexistent(_, k)
    error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
end
local loading = nil     -- the functions registered by the library being loaded
local FLAG_NAMES = {"no-writes", "allow-oom", "allow-stale", "no-cluster",
                    "allow-cross-slot-keys"}

local function reg_fail(msg) error({err = "ERR " .. msg}, 0) end

local function as_string(v)
    -- luaGetStringSds: lua_isstring accepts numbers (converted).
    local t = type(v)
    if t == "string" then return v end
    if t == "number" then return tostring(v) end
    return nil
end

local function read_flags(flags)
    local found, j = {}, 1
    while true do
        local v = flags[j]
        j = j + 1
        if v == nil then break end
        local s = as_string(v)
        if not s then return nil end
        local known = false
        for _, name in ipairs(FLAG_NAMES) do
            if s:lower() == name then found[name] = true; known = true; break end
        end
        if not known then return nil end
    end
    return found
end

local function read_named(t)
    if type(t) ~= "table" then
        reg_fail("calling redis.register_function with a single argument is only " ..
                 "applicable to Lua table (representing named arguments).")
    end
    local name, desc, callback, flags = nil, nil, nil, {}
    for k, v in raw_next, t, nil do
        local key = as_string(k)
        if not key then reg_fail("named argument key given to redis.register_function is not a string") end
        key = key:lower()
        if key == "function_name" then
            name = as_string(v)
            if not name then reg_fail("function_name argument given to redis.register_function must be a string") end
        elseif key == "description" then
            desc = as_string(v)
            if not desc then reg_fail("description argument given to redis.register_function must be a string") end
        elseif key == "callback" then
            if type(v) ~= "function" then reg_fail("callback argument given to redis.register_function must be a function") end
            callback = v
        elseif key == "flags" then
            if type(v) ~= "table" then
                reg_fail("flags argument to redis.register_function must be a table representing function flags")
            end
            flags = read_flags(v)
            if not flags then reg_fail("unknown flag given") end
        else
            reg_fail("unknown argument given to redis.register_function")
        end
    end
    if not name then reg_fail("redis.register_function must get a function name argument") end
    if not callback then reg_fail("redis.register_function must get a callback argument") end
    return name, callback, flags, desc
end

local function register_function(...)
    if not loading then
        reg_fail("redis.register_function can only be called on FUNCTION LOAD command")
    end
    local n = select("#", ...)
    if n < 1 or n > 2 then reg_fail("wrong number of arguments to redis.register_function") end
    local name, callback, flags, desc
    if n == 1 then
        name, callback, flags, desc = read_named(...)
    else
        local first, second = ...
        name = as_string(first)
        if not name then reg_fail("first argument to redis.register_function must be a string") end
        if type(second) ~= "function" then
            reg_fail("second argument to redis.register_function must be a function")
        end
        callback, flags = second, {}
    end
    -- functionLibCreateFunction()
    if not name:find("^[A-Za-z0-9_]+$") then
        reg_fail("Library names can only contain letters, numbers, or underscores(_) and " ..
                 "must be at least one character long")
    end
    if loading.names[name] then reg_fail("Function already exists in the library") end
    loading.names[name] = true
    local ordered = {}
    for _, f in ipairs(FLAG_NAMES) do if flags[f] then ordered[#ordered + 1] = f end end
    loading[#loading + 1] = {name, callback, ordered, desc}
end

local load_redis = {register_function = register_function, log = py.log,
                    LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
                    REDIS_VERSION = py.version, REDIS_VERSION_NUM = py.version_num}
raw_setmt(load_redis, {__index = nonexistent})
local LOAD_G = raw_setmt({redis = protect(load_redis)}, {__index = nonexistent})
local load_env = protect(LOAD_G)

local clock = os.clock
local LOAD_TIMEOUT = 0.5
local load_started = 0
local in_load = false   -- the library's code is running (the timeout hook may fire)
local function load_hook()
    if in_load and clock() - load_started > LOAD_TIMEOUT then
        -- Raised once: the load environment has no pcall to swallow it.
        in_load = false
        error({err = "ERR FUNCTION LOAD timeout"}, 0)
    end
end

-- Returns a list of {name, callback, flags, description}, or nil and the error.
-- (api.dump gives a callback's compiled code, for tailcalls.short_chunk().)
api.dump = dump
function api.load_library(body, timeout)
    local f, err = loadstring(body, "@user_function")
    if not f then return nil, "Error compiling function: " .. tostring(err) end
    f = no_tail_calls(f)
    setfenv(f, lib_env)
    lib_mt.__index = load_env
    loading = {names = {}}
    load_started = clock()
    if timeout then sethook(load_hook, "", 100000) end
    in_load = true
    local ok, e = raw_pcall(f)
    in_load = false
    set_run_hook()
    lib_mt.__index = env
    local registered = loading
    loading = nil
    if not ok then
        if type(e) == "userdata" then e = py.unwrap(e) end
        local msg
        if type(e) == "table" then msg = tostring(raw_rawget(e, "err")) else msg = "ERR " .. tostring(e) end
        return nil, "Error registering functions: " .. msg
    end
    registered.names = nil
    return registered
end

local function run_function(f, keys, args)
    running = true
    return ended(xpcall(function() return f(keys, args) end, err_handler))
end
api.run_function = run_function
function api.run_function_args(f, nk, ...)
    return run_function(f, split(nk, ...))
end

-- The shape of a returned table for luaReplyToRedisReply(), read with rawget as Redis
-- does (a metatable's __index must not run: it could fail or call Redis).
local SHAPES = {{"err", "string"}, {"ok", "string"}, {"double", "number"},
                {"big_number", "string"}, {"map", "table"}, {"set", "table"},
                {"verbatim_string", "table"}}
function shape(t)
    -- The two shapes scripts return most, first (the order is Redis's).
    local v = raw_rawget(t, "err")
    if type(v) == "string" then return "err", v, raw_rawget(t, "ignore_error_stats_update") end
    v = raw_rawget(t, "ok")
    if type(v) == "string" then return "ok", v end
    for i = 3, #SHAPES do
        local kind = SHAPES[i]
        v = raw_rawget(t, kind[1])
        if type(v) == kind[2] then return kind[1], v end
    end
    local items, n = {}, 0
    while true do
        local v = raw_rawget(t, n + 1)
        if v == nil then break end
        n = n + 1
        items[n] = v
    end
    return "array", items, n
end
api.shape = shape
api.globals = G
api.null = py.null
return api
