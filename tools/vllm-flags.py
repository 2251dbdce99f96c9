"""Read the `vllm serve` flags of every vLLM release from its sdist and write catalogs/vllm-flags.ts.

usage: python3 tools/vllm-flags.py SDISTS_DIR > catalogs/vllm-flags.ts
       python3 tools/vllm-flags.py --json SDISTS_DIR > flags.json   (the extraction alone, slow)
       python3 tools/vllm-flags.py flags.json > catalogs/vllm-flags.ts  (the catalog from it)
SDISTS_DIR holds one unpacked sdist per release, named by version (from https://pypi.org/pypi/vllm/json:
the `sdist` file of each release). Needs the `packaging` module. Long flags come from the
`add_argument` calls of vllm/engine/arg_utils.py and the OpenAI server's cli_args.py, and from 0.8.5
on from the config dataclass fields those calls expand (`get_kwargs`), with `--no-…` for booleans.
"""
import ast,os,sys,json,re
from packaging.version import Version
root=sys.argv[-1]
def cfg_fields(vdir):
    """map class name -> {field: annotation_src}, bases"""
    res={}
    paths=[]
    for base in ['vllm/config.py','vllm/config']:
        p=os.path.join(vdir,base)
        if os.path.isfile(p): paths.append(p)
        elif os.path.isdir(p):
            paths+= [os.path.join(p,f) for f in os.listdir(p) if f.endswith('.py')]
    for extra in ['vllm/entrypoints/openai/cli_args.py','vllm/entrypoints/common/cli_args.py','vllm/entrypoints/launchers/cli_args.py','vllm/engine/arg_utils.py']:
        p=os.path.join(vdir,extra)
        if os.path.exists(p): paths.append(p)
    for p in paths:
        src=open(p).read()
        try:t=ast.parse(src)
        except: continue
        for n in t.body:
            if isinstance(n,ast.ClassDef):
                fl={}
                for s in n.body:
                    if isinstance(s,ast.AnnAssign) and isinstance(s.target,ast.Name):
                        a=ast.get_source_segment(src,s.annotation) or ''
                        if 'ClassVar' in a or 'InitVar' in a: continue
                        fl[s.target.id]=a
                res[n.name]=(fl,[ast.get_source_segment(src,b) for b in n.bases])
    return res
def all_fields(cls,cf):
    out={}
    if cls not in cf: return out
    fl,bases=cf[cls]
    for b in bases: out.update(all_fields(b,cf))
    out.update(fl); return out
def is_bool_ann(a):
    # BooleanOptionalAction if bool in union and not exactly bool|str|None (0.33 special case)
    toks=set(re.findall(r'\b(bool|str|None|Optional|Literal|dict|list)\b',a))
    if 'bool' not in toks: return False
    if 'Literal' in a and not a.strip().startswith('bool'): return False
    if toks>={'bool','str'} and ('None' in toks or 'Optional' in toks): return None  # ambiguous
    return True
def extract(v):
    vdir=os.path.join(root,v)
    files=['vllm/engine/arg_utils.py','vllm/entrypoints/openai/cli_args.py','vllm/entrypoints/common/cli_args.py','vllm/entrypoints/launchers/cli_args.py','vllm/entrypoints/cli/serve.py','vllm/scripts.py']
    cf=cfg_fields(vdir)
    getkw_bool = 'BooleanOptionalAction' in open(os.path.join(vdir,'vllm/engine/arg_utils.py')).read() and Version(v)>=Version('0.8.5')
    longs={}; shorts={}; notes=[]
    for f in files:
        p=os.path.join(vdir,f)
        if not os.path.exists(p): continue
        src=open(p).read(); t=ast.parse(src)
        # map kwargs var -> class
        kwvar={}
        for n in ast.walk(t):
            if isinstance(n,ast.Assign) and isinstance(n.value,ast.Call) and getattr(n.value.func,'id',getattr(n.value.func,'attr',None)) in ('get_kwargs','_compute_kwargs') and n.value.args:
                for tg in n.targets:
                    if isinstance(tg,ast.Name): kwvar[tg.id]=ast.get_source_segment(src,n.value.args[0])
        for n in ast.walk(t):
            if not(isinstance(n,ast.Call) and isinstance(n.func,ast.Attribute) and n.func.attr=='add_argument'): continue
            recv=ast.get_source_segment(src,n.func.value)
            if f=='vllm/scripts.py' and recv!='serve_parser': continue
            if f=='vllm/entrypoints/cli/serve.py' and 'serve' not in recv and recv not in ('parser',): continue
            names=[]
            for a in n.args:
                if isinstance(a,ast.Constant) and isinstance(a.value,str): names.append(a.value)
                elif isinstance(a,ast.JoinedStr):
                    names.append('__FSTRING__')
            kws={k.arg:k.value for k in n.keywords}
            boolopt=False
            act=kws.get('action')
            if act is not None and 'BooleanOptionalAction' in (ast.get_source_segment(src,act) or ''): boolopt=True
            # **xxx_kwargs["field"]
            subs=[]
            for k in n.keywords:
                if k.arg is None and isinstance(k.value,ast.Subscript): subs.append(k.value)
                if k.arg is None and isinstance(k.value,ast.Dict):
                    subs+=[vv for kk,vv in zip(k.value.keys,k.value.values) if kk is None and isinstance(vv,ast.Subscript)]
                    for kk,vv in zip(k.value.keys,k.value.values):
                        if isinstance(kk,ast.Constant) and kk.value=='action' and 'BooleanOptionalAction' in (ast.get_source_segment(src,vv) or ''): boolopt=True
            for sv in subs:
                if getattr(sv.value,'id',None) in kwvar:
                    cls=kwvar[sv.value.id]; fld=sv.slice.value if isinstance(sv.slice,ast.Constant) else None
                    if getkw_bool and fld:
                        ann=all_fields(cls,cf).get(fld)
                        if ann is None: notes.append(f'unresolved field {cls}.{fld}')
                        elif is_bool_ann(ann): boolopt=True
            if '__FSTRING__' in names:
                # frontend loop: resolve dataclass fields of FrontendArgs classes in this file
                fcls=[c for c in cf if c.endswith('FrontendArgs') ]
                for c in ['FrontendArgs']:
                    for fld,ann in all_fields(c,cf).items():
                        if fld.startswith('_'): continue
                        nm='--'+fld.replace('_','-')
                        longs[nm]=f
                        if getkw_bool and is_bool_ann(ann): longs['--no-'+fld.replace('_','-')]=f+' (BooleanOptionalAction)'
                continue
            for nm in names:
                if nm.startswith('--'):
                    longs[nm]=f
                    if boolopt: longs['--no-'+nm[2:]]=f+' (BooleanOptionalAction)'
                elif nm.startswith('-'):
                    shorts[nm]=[x for x in names if x.startswith('--')]
                else:
                    longs.setdefault('<positional:'+nm+'>',f)
    return longs,shorts,notes
sets={};shorts={}
if root.endswith('.json'):
    extracted=json.load(open(root))
else:
    vs=sorted((d for d in os.listdir(root) if re.match(r'^\d+\.\d+\.\d+(\.post\d+|\.\d+)?$',d)),key=Version)
    extracted={}
    for v in vs:
        L,S,N=extract(v)
        extracted[v]={'long':sorted(k for k in L if not k.startswith('<')),'short':S,'notes':sorted(set(N))}
    if sys.argv[1]=='--json':
        json.dump(extracted,sys.stdout,indent=1); sys.exit(0)
vs=sorted(extracted,key=Version)
for v in vs:
    sets[v]=set(extracted[v]['long'])
    for k,longs in extracted[v]['short'].items():
        if longs: shorts.setdefault(k,longs[0])
def spans(f):
    out=[];start=prev=None
    for v in vs:
        if f in sets[v]:
            if start is None: start=v
            prev=v
        elif start is not None:
            out.append(f"{start}-{prev}"); start=None
    if start is not None: out.append(f"{start}-" if prev==vs[-1] else f"{start}-{prev}")
    return ",".join(out)
allf=sorted(set().union(*sets.values()))
print("""/**
 * Long flags of `vllm serve` per release, read from each release's sdist (PyPI) by parsing its
 * argument definitions: `add_argument` calls in vllm/engine/arg_utils.py and the OpenAI server's
 * cli_args.py, and from 0.8.5 on the config dataclass fields they expand to `--kebab-case` (with
 * `--no-…` for booleans). Generated by tools/vllm-flags.py; do not edit by hand. Each entry: the
 * spans of releases that have the flag ("a-b", open-ended "a-"), over the %d releases read
 * (%s … %s; releases not read take their neighbours' spans).
 */
export const VLLM_FLAG_SPANS: Readonly<Record<string, string>> = {""" % (len(vs), vs[0], vs[-1]))
for f in allf: print(f"  {json.dumps(f)}: {json.dumps(spans(f))},")
print("};")
print("/** vLLM's short aliases (any release) and the long flag each stands for. */")
print("export const VLLM_SHORT_FLAGS: Readonly<Record<string, string>> = {")
for k in sorted(shorts): print(f"  {json.dumps(k)}: {json.dumps(shorts[k])},")
print("};")
print(f"export const VLLM_FLAGS_READ_UP_TO = {json.dumps(vs[-1])};")
