"""An independent, deliberately plain EventBridge pattern matcher in Python, for checking trailwatch.

It follows /work/shared/reference/event-patterns.md (docs/PATTERNS.md) for the forms bench/gen_rules.py
generates: exact strings, prefix, suffix, anything-but (value, list, prefix/suffix), exists, cidr and
wildcard, plus exact numbers/booleans/null, equals-ignore-case and numeric for completeness. It walks
the parsed event for every rule, so it is slow and obviously independent of trailwatch's automaton.
Not covered: array consistency across fields, $or, dotted keys (gen_rules.py generates none of them).
"""
import ipaddress
import re

MISSING = object()


def _is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _wildcard_re(w):
    out, i = [], 0
    while i < len(w):
        c = w[i]
        if c == "\\" and i + 1 < len(w):
            out.append(re.escape(w[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "*" else re.escape(c))
        i += 1
    return re.compile("".join(out), re.S)


_wc_cache = {}
_net_cache = {}


def _cidr_match(rng, v):
    if not isinstance(v, str):
        return False
    net = _net_cache.get(rng)
    if net is None:
        net = _net_cache[rng] = ipaddress.ip_network(rng, strict=False)
    try:
        addr = ipaddress.ip_address(v)    # rejects leading zeros, like inet_pton
    except ValueError:
        return False
    return addr.version == net.version and addr in net


def _numeric(ops, v):
    if not _is_num(v):
        return False
    for i in range(0, len(ops), 2):
        op, x = ops[i], ops[i + 1]
        ok = {"=": v == x, "<": v < x, "<=": v <= x, ">": v > x, ">=": v >= x}[op]
        if not ok:
            return False
    return True


def _excluded(x, v):
    """anything-but: is value v excluded by X?"""
    if isinstance(x, list):
        return any(_excluded(e, v) for e in x)
    if isinstance(x, dict):
        (op, arg), = x.items()
        args = arg if isinstance(arg, list) else [arg]
        if not isinstance(v, str):
            return False
        if op == "prefix":
            return any(v.startswith(a) for a in args)
        if op == "suffix":
            return any(v.endswith(a) for a in args)
        if op == "equals-ignore-case":
            return any(v.casefold() == a.casefold() for a in args)
        if op == "wildcard":
            return any(_leaf_one({"wildcard": a}, v) for a in args)
        raise ValueError("anything-but operator %r" % op)
    if isinstance(x, str):
        return isinstance(v, str) and v == x
    if _is_num(x):
        return _is_num(v) and float(v) == float(x)
    return False


def _leaf_one(m, v):
    """Does one present value v (not an array) satisfy matcher m?"""
    if isinstance(m, dict):
        (op, arg), = m.items()
        if op == "prefix":
            if isinstance(arg, dict):
                return isinstance(v, str) and v.casefold().startswith(arg["equals-ignore-case"].casefold())
            return isinstance(v, str) and v.startswith(arg)
        if op == "suffix":
            if isinstance(arg, dict):
                return isinstance(v, str) and v.casefold().endswith(arg["equals-ignore-case"].casefold())
            return isinstance(v, str) and v.endswith(arg)
        if op == "equals-ignore-case":
            return isinstance(v, str) and v.casefold() == arg.casefold()
        if op == "wildcard":
            rx = _wc_cache.get(arg)
            if rx is None:
                rx = _wc_cache[arg] = _wildcard_re(arg)
            return isinstance(v, str) and rx.fullmatch(v) is not None
        if op == "anything-but":
            return not _excluded(arg, v)
        if op == "exists":
            return arg is True
        if op == "cidr":
            return _cidr_match(arg, v)
        if op == "numeric":
            return _numeric(arg, v)
        raise ValueError("operator %r" % op)
    if isinstance(m, bool) or m is None:
        return v is m
    if isinstance(m, str):
        return isinstance(v, str) and v == m
    if _is_num(m):
        return _is_num(v) and float(v) == float(m)
    raise ValueError("matcher %r" % (m,))


def _leaf(matchers, v):
    # Only leaf values count: an object (or an array holding only objects or arrays, or nothing) at
    # the place of a leaf is the same as a missing field.
    if v is MISSING or isinstance(v, dict):
        values = []
    elif isinstance(v, list):
        values = [x for x in v if not isinstance(x, (dict, list))]
    else:
        values = [v]
    if not values:
        return any(isinstance(m, dict) and m.get("exists") is False for m in matchers)
    return any(_leaf_one(m, x) for m in matchers for x in values
               if not (isinstance(m, dict) and m.get("exists") is False))


def matches(pattern, event):
    """True when the parsed event (a dict) matches the parsed pattern (a dict)."""
    for key, sub in pattern.items():
        if key == "$or":
            if not any(matches(p, event) for p in sub):
                return False
            continue
        v = event.get(key, MISSING) if isinstance(event, dict) else MISSING
        if isinstance(sub, dict):
            if isinstance(v, list):
                objs = [e for e in v if isinstance(e, dict)]
                if not any(matches(sub, e) for e in objs) and not (not objs and matches(sub, {})):
                    return False
            elif not matches(sub, v if isinstance(v, dict) else {}):
                return False
        elif not _leaf(sub, v):
            return False
    return True
