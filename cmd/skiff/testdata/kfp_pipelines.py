"""Pipelines the KFP CLI tests compile with the offline kfp SDK.

python3 kfp_pipelines.py DIR compiles each pipeline of PIPELINES to
DIR/NAME.yaml. Components skip installing kfp (install_kfp_package=False):
the SDK is on PYTHONPATH already, and pip would only cost time.
"""
import os
import sys
from typing import List, NamedTuple

from kfp import compiler, dsl
from kfp.dsl import Artifact, Dataset, Input, Output

component = dsl.component(install_kfp_package=False, base_image='python:3.11')


@component
def echo(s: str) -> str:
    return s


@component
def join(xs: List[str]) -> str:
    return '|'.join(xs)


@component
def gen() -> list:
    return [{'a': 1, 'b': 2.5}, {'a': 2, 'b': [1]}]


@dsl.pipeline(name='text-inputs')
def text_inputs() -> NamedTuple('Outputs', a=str, b=str, item=str):
    """A number, list or object reaching a STRING input is its JSON text."""
    with dsl.ParallelFor(gen().output) as item:
        a = echo(s=item.a)
        b = echo(s=item.b)
        w = echo(s=item)
    Outputs = NamedTuple('Outputs', a=str, b=str, item=str)
    return Outputs(a=join(xs=dsl.Collected(a.output)).output,
                   b=join(xs=dsl.Collected(b.output)).output,
                   item=join(xs=dsl.Collected(w.output)).output)


@dsl.container_component
def flags(t: dsl.OutputPath(bool), f: dsl.OutputPath(bool),
          one: dsl.OutputPath(bool), s: dsl.OutputPath(str)):
    return dsl.ContainerSpec(
        image='alpine',
        command=['sh', '-c', 'printf True > "$0"; echo False > "$1"; printf 1 > "$2"; printf "a\\n" > "$3"'],
        args=[t, f, one, s])


@dsl.pipeline(name='bool-outputs')
def bool_outputs() -> NamedTuple('Outputs', t=bool, f=bool, one=bool, s=str):
    """Output files as KFP's launcher reads them: bool with ParseBool."""
    x = flags()
    Outputs = NamedTuple('Outputs', t=bool, f=bool, one=bool, s=str)
    return Outputs(t=x.outputs['t'], f=x.outputs['f'], one=x.outputs['one'], s=x.outputs['s'])


@component
def make(i: int, j: int, out: Output[Dataset]):
    with open(out.path, 'w') as f:
        f.write(f'{i}{j}')


@component
def cat(ds: Input[List[Dataset]]) -> str:
    return ','.join(sorted(open(d.path).read() for d in ds))


@component
def ij(i: int, j: int) -> str:
    return f'{i}{j}'


@component
def join_nested(xs: List[List[str]]) -> str:
    return '|'.join(','.join(row) for row in xs)


@dsl.pipeline(name='collected-nested')
def collected_nested() -> NamedTuple('Outputs', artifacts=str, params=str):
    """dsl.Collected over a task in nested loops: every iteration's
    artifact in one flat list; parameters in a list of lists (KFP's
    nested_with_parameters)."""
    with dsl.ParallelFor([1, 2]) as i:
        with dsl.ParallelFor([1, 2, 3]) as j:
            m = make(i=i, j=j)
            p = ij(i=i, j=j)
    Outputs = NamedTuple('Outputs', artifacts=str, params=str)
    return Outputs(artifacts=cat(ds=dsl.Collected(m.outputs['out'])).output,
                   params=join_nested(xs=dsl.Collected(p.output)).output)


@component
def fail() -> str:
    raise SystemExit(1)


@component
def show(msg: str = 'the default') -> str:
    return msg


@dsl.pipeline(name='ignore-upstream-failure')
def ignore_upstream_failure():
    """An input fed by a failed task falls back to its default."""
    f = fail()
    show(msg=f.output).ignore_upstream_failure()


@component
def custom_path(out: Output[Dataset]):
    import os
    out.set_path(os.path.join(os.path.dirname(out.path), 'elsewhere'))
    with open(out.path, 'w') as f:
        f.write('written at a custom path')


@component
def returns_artifacts() -> NamedTuple('Outputs', d1=Dataset, d2=Artifact):
    d1 = Dataset(uri=dsl.get_uri(suffix='d1'), metadata={'half': 1})
    with open(d1.path, 'w') as f:
        f.write('first')
    d2 = Artifact(uri=dsl.get_uri(suffix='d2'))
    with open(d2.path, 'w') as f:
        f.write('second')
    Outputs = NamedTuple('Outputs', d1=Dataset, d2=Artifact)
    return Outputs(d1=d1, d2=d2)


@component
def read(a: Input[Artifact]) -> str:
    with open(a.path) as f:
        return f.read()


@dsl.pipeline(name='moved-artifacts')
def moved_artifacts() -> NamedTuple('Outputs', custom=str, d1=str, d2=str):
    """Artifact.set_path and artifacts returned with a dsl.get_uri uri."""
    c = custom_path()
    r = returns_artifacts()
    Outputs = NamedTuple('Outputs', custom=str, d1=str, d2=str)
    return Outputs(custom=read(a=c.outputs['out']).output,
                   d1=read(a=r.outputs['d1']).output,
                   d2=read(a=r.outputs['d2']).output)


@component
def declares_but_writes_nothing(out: Output[Dataset]):
    pass


@dsl.pipeline(name='missing-artifact')
def missing_artifact():
    """A declared output the step did not produce fails the task."""
    declares_but_writes_nothing()


@dsl.component
def add(a: int, b: int) -> int:
    return a + b


@dsl.pipeline(name='agree')
def agree() -> int:
    return add(a=add(a=1, b=2).output, b=3).output


PIPELINES = {
    'agree': agree,
    'text_inputs': text_inputs,
    'bool_outputs': bool_outputs,
    'collected_nested': collected_nested,
    'ignore_upstream_failure': ignore_upstream_failure,
    'moved_artifacts': moved_artifacts,
    'missing_artifact': missing_artifact,
}

if __name__ == '__main__':
    for name, p in PIPELINES.items():
        compiler.Compiler().compile(p, os.path.join(sys.argv[1], name + '.yaml'))
