# (layout experiment of issue 21: see ../README.md, "Why present clauses are declined")
# Experiment: which document layout lets the 0.5B model copy the segment it cites?
import json, re, sys, glob, os, urllib.request, ast
CATS = {
 "Governing Law": "Which state's or country's law governs this agreement?",
 "Expiration Date": "When does the initial term of this agreement end?",
 "Renewal Term": "Does this agreement renew after its initial term, and for how long?",
 "Termination For Convenience": "May a party terminate this agreement without cause?",
 "Non-Compete": "Does this agreement restrict a party from competing with the other?",
 "Exclusivity": "Does this agreement grant exclusive rights or require exclusive dealing?",
 "Anti-Assignment": "Does assigning this agreement require the other party's consent?",
 "Cap On Liability": "Does this agreement cap a party's liability?",
}
EXAMPLE = "[S31] The bridge opened to traffic in 1932.\n[S75] It carries six lanes over the river."
SYSTEM_END = ("You are docent, a careful analyst of documents. You answer only from the document you are given. "
  "The document comes as numbered segments, one per line, each ending with its marker, such as [S12]. You answer in lines. "
  "Each line starts with the marker of the one segment that supports it, then one short sentence that says what that segment says. "
  "An example of the format, from an answer about another document:\n" + EXAMPLE)
SYSTEM_START = SYSTEM_END.replace("each ending with its marker", "each starting with its marker")
SYSTEM_BOTH = SYSTEM_END.replace("each ending with its marker", "each starting and ending with its marker")
def segments(text):
    flat = re.sub(r'(?<!\n)\n(?!\n)', ' ', text)
    out = []; pend = None
    for m in re.finditer(r'[^.!?]*[.!?]+["\')]*\s*|[^.!?]+$', flat, re.S):
        s, e = m.start(), m.end()
        piece = text[s:e]; lead = len(piece) - len(piece.lstrip()); body = piece.strip()
        if not body: continue
        s = s + lead; e = s + len(body)
        if pend is not None: s = pend
        if e - s < 16: pend = s; continue
        pend = None
        while e - s > 600:
            cut = text.rfind(' ', s, s + 600)
            if cut <= s: cut = s + 600
            out.append((s, cut)); s = cut + 1
        out.append((s, e))
    return out
def labels(n):
    width = max(len(str(max(n,1)*10)), 3); mod = 10**width
    return [(i*7919+4111) % mod for i in range(n)]
def words(s): return set(w for w in re.findall(r'[a-z0-9]+', s.lower()) if len(w) > 3)
def overlap(a, b):
    a = words(a); return len(a & words(b)) / max(len(a), 1)
FIRST = None
def gq(w): return '"' + w.replace('\\', '\\\\').replace('"', '\\"') + '"'
def ask(system, user, labs, max_tokens=60):
    alts = " | ".join('"%d"' % l for l in labs) if FIRST is None else " | ".join(gq("%d] %s" % (l, f))[:-1] + '"' for l, f in zip(labs, FIRST))
    grammar = ('root ::= "[S" lab "] " [^\\n\\[\\]]+ "\\n"\nlab ::= ' + alts + '\n') if FIRST is None else ('root ::= "[S" lab " " [^\\n\\[\\]]+ "\\n"\nlab ::= ' + alts + '\n')
    body = {"messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "temperature": 0, "max_tokens": max_tokens, "grammar": grammar, "cache_prompt": True}
    req = urllib.request.Request("http://127.0.0.1:18323/v1/chat/completions", json.dumps(body).encode(), {"content-type": "application/json"})
    r = json.load(urllib.request.urlopen(req, timeout=900))
    return r["choices"][0]["message"]["content"], r["usage"]
layout = sys.argv[1]; files = sys.argv[2:]
for f in files:
    text = open(f).read(); gold = json.load(open(f[:-4] + ".gold.json"))["categories"]
    segs = segments(text); labs = labels(len(segs))
    lines = []
    for (s, e), l in zip(segs, labs):
        body = text[s:e].replace("\n", " ")
        ws = body.split(' '); k = len(ws) if len(ws) < 4 else max(2, min(len(ws)//3, 8))
        mid = ' '.join(ws[:k]) + f' [S{l}] ' + ' '.join(ws[k:])
        lines.append({"endfirst": f"{body} [S{l}]", "mid": mid.rstrip(), "end": f"{body} [S{l}]", "start": f"[S{l}] {body}", "both": f"[S{l}] {body} [S{l}]"}[layout])
    numbered = "\n".join(lines) + "\n"
    if layout == "endfirst":
        FIRST = [text[s:e].split()[0] for s, e in segs]
    system = {"endfirst": SYSTEM_END, "mid": SYSTEM_END.replace("each ending with its marker", "each with its marker inside"), "end": SYSTEM_END, "start": SYSTEM_START, "both": SYSTEM_BOTH}[layout]
    for cat, q in CATS.items():
        ctx = ast.literal_eval(gold.get(cat, {}).get("context", "[]") or "[]")
        if not ctx: continue
        gspans = [(text.find(c[:60]), text.find(c[:60]) + len(c)) for c in ctx if text.find(c[:60]) >= 0]
        user = f"<document>\n{numbered}</document>\n\nQuestion: {q}\nFind the segment of the document that answers the question and start your answer with its marker. Then answer in one to three lines, each starting with the marker of the segment it uses."
        out, usage = ask(system, user, labs)
        m = re.match(r'\[S(\d+)\] (.*)', out)
        lab = int(m.group(1)); claim = m.group(2)
        i = labs.index(lab)
        s, e = segs[i]
        hit = any(s < ge and gs < e for gs, ge in gspans)
        ov = [overlap(claim, text[a:b]) for a, b in segs]
        best = max(range(len(segs)), key=lambda k: ov[k])
        print(json.dumps({"layout": layout, "doc": os.path.basename(f)[:20], "cat": cat, "hit": hit, "cited_i": i, "best_i": best,
                          "support_cited": round(ov[i], 2), "support_next": round(ov[i+1], 2) if i+1 < len(segs) else None, "tokens": usage.get("completion_tokens"), "claim": claim[:120]}), flush=True)
