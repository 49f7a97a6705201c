"""Which IPClassifier patterns no packet can reach: every packet one matches, an earlier one
matches too (Click's "output N matches no packets").

A sound test, not a complete one: :func:`implies` proves ``a -> b`` from the trees'
structure (a conjunct, a disjunct, ``x or not x``) and from comparisons on the same field
(``ttl > 7`` implies ``ttl > 5``, ``src net 10.1.0.0/16`` implies ``src net 10.0.0.0/8``).
What it cannot prove it does not claim, so a warning is always true; C++ Click misses some
of these too (and finds none this misses on the usual patterns).
"""

from __future__ import annotations

from routebricks.elements.ip.ipfilter_tree import And, Cmp, Const, Node, Not, Or

#: Recursion budget per question: trees are at most 100 deep, but their products are not.
_BUDGET = 10_000


def unreachable_rules(trees: list[Node]) -> list[int]:
    """The indexes of the rules implied by the rules before them (or matching nothing)."""
    out = []
    flat: list[Node] = []  # the earlier rules' disjuncts, one level
    for i, t in enumerate(trees):
        earlier = Or(tuple(flat)) if flat else Const(False)
        flat.extend(t.children if isinstance(t, Or) else (t,))
        try:
            if implies(t, earlier, [_BUDGET]):
                out.append(i)
        except RecursionError:
            pass
    return out


def implies(a: Node, b: Node, budget: list[int] | None = None) -> bool:
    """True only if every packet that ``a`` matches, ``b`` matches (False: not proven)."""
    budget = [_BUDGET] if budget is None else budget
    budget[0] -= 1
    if budget[0] < 0:
        return False
    if a == b or a == Const(False) or b == Const(True):
        return True
    if isinstance(a, And) and _contradiction(a, budget):
        return True
    if isinstance(b, Or) and _tautology(b):
        return True
    if isinstance(a, Or):
        return all(implies(c, b, budget) for c in a.children)
    if isinstance(b, And):
        return all(implies(a, c, budget) for c in b.children)
    if isinstance(a, And) and any(implies(c, b, budget) for c in a.children):
        return True
    if isinstance(b, Or) and any(implies(a, c, budget) for c in b.children):
        return True
    if isinstance(b, Not):
        if isinstance(a, Not) and implies(b.child, a.child, budget):
            return True
        # not(x) holds where x cannot: x contradicts itself, or a and x exclude each other
        return ((isinstance(b.child, And) and _contradiction(b.child, budget))
                or _exclusive(a, b.child))
    if isinstance(a, Cmp) and isinstance(b, Cmp):
        return _cmp_implies(a, b)
    return False


def _tautology(b: Or) -> bool:
    """``x or not x`` among the disjuncts (x one of them, or all of x's own disjuncts)."""
    kids = set(b.children)
    if any(isinstance(c, Not) and (c.child in kids or (
            isinstance(c.child, Or) and kids.issuperset(c.child.children)))
           for c in b.children):
        return True
    nots = [c.child for c in b.children if isinstance(c, Not)]  # not x or not y, x and y
    return any(_exclusive(x, y) for i, x in enumerate(nots) for y in nots[i + 1:])


def _contradiction(a: And, budget: list[int]) -> bool:
    """``x and not x``, or two comparisons no value of their field meets both: ``tcp and
    ip proto 47``, ``tcp opt rst and icmp type echo``."""
    kids = set(a.children)
    if any(isinstance(c, Not) and (c.child in kids or (
            isinstance(c.child, And) and kids.issuperset(c.child.children)))
           for c in a.children):
        return True
    cmps = [c for c in a.children if isinstance(c, Cmp)]
    if any(_disjoint(x, y) for i, x in enumerate(cmps) for y in cmps[i + 1:]):
        return True
    # A disjunction none of whose cases the comparisons allow.
    if any(isinstance(o, Or) and all(any(_disjoint(x, y) for x in cmps
                                         for y in _conjuncts(d)) for d in o.children)
           for o in a.children):
        return True
    # not x, where the rest implies x: src host 10.0.0.2 and not net 10.0.0.0/8.
    for n in a.children:
        if isinstance(n, Not):
            rest = [c for c in a.children if c is not n]
            if implies(rest[0] if len(rest) == 1 else And(tuple(rest)), n.child, budget):
                return True
    return False


def _conjuncts(n: Node) -> list[Cmp]:
    kids = n.children if isinstance(n, And) else (n,)
    return [c for c in kids if isinstance(c, Cmp)]


def _exclusive(a: Node, b: Node) -> bool:
    """No packet matches both: a comparison each must meet excludes the other's."""
    return any(_disjoint(x, y) for x in _conjuncts(a) for y in _conjuncts(b))


def _disjoint(a: Cmp, b: Cmp) -> bool:
    """No value of the field meets both comparisons (False: not proven)."""
    if _key(a) != _key(b):
        return False
    if a.op == b.op == "eq":
        return bool((a.value ^ b.value) & a.mask & b.mask)
    if a.mask != b.mask:
        return False
    if b.op == "eq":
        a, b = b, a
    v, w = a.value, b.value
    return {
        ("eq", "ne"): v == w, ("eq", "gt"): v <= w, ("eq", "le"): v > w,
        ("gt", "le"): w <= v, ("le", "gt"): v <= w,
    }.get((a.op, b.op), False)


def _key(c: Cmp) -> tuple[object, ...]:
    f = c.field
    return (f.transport, f.offset, f.width, f.shift, f.nbits, f.proto)


def _cmp_implies(a: Cmp, b: Cmp) -> bool:
    """Comparisons of one field: the values ``a`` accepts are among those ``b`` does."""
    if _key(a) != _key(b):
        return False
    if a.mask != b.mask:
        # A longer prefix of the same field: src net 10.1.0.0/16 -> src net 10.0.0.0/8.
        return (a.op == b.op == "eq" and a.mask & b.mask == b.mask
                and a.value & b.mask == b.value)
    v, w = a.value, b.value
    return {
        ("eq", "eq"): v == w, ("eq", "ne"): v != w, ("eq", "gt"): v > w, ("eq", "le"): v <= w,
        ("gt", "gt"): v >= w, ("gt", "ne"): w <= v,
        ("le", "le"): v <= w, ("le", "ne"): w > v,
        ("ne", "ne"): v == w,
    }.get((a.op, b.op), False)
