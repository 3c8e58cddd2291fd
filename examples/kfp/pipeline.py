"""A small pipeline written with the kfp SDK, compiled to pipeline.yaml.

Container components only (a shell command each), so that it runs with
the local executor as well as with --executor docker:

    python3 pipeline.py            # writes pipeline.yaml (needs the kfp SDK)
    skiff run pipeline.yaml -p rounds=5
"""
from kfp import compiler, dsl
from kfp.dsl import Dataset, Input, Output


@dsl.container_component
def count(rounds: int, numbers: Output[Dataset]):
    return dsl.ContainerSpec(
        image='busybox',
        command=['sh', '-c', 'mkdir -p "$(dirname "$1")"; seq 1 "$0" > "$1"; echo "counted to $0"'],
        args=[rounds, numbers.path])


@dsl.container_component
def total(numbers: Input[Dataset], sum: dsl.OutputPath(int)):
    return dsl.ContainerSpec(
        image='busybox',
        command=['sh', '-c', 's=0; while read n; do s=$((s + n)); done < "$0"; mkdir -p "$(dirname "$1")"; printf %s "$s" > "$1"; echo "sum $s"'],
        args=[numbers.path, sum])


@dsl.pipeline(name='kfp-count', description='Counts to a number and adds the numbers up.')
def count_pipeline(rounds: int = 10) -> int:
    c = count(rounds=rounds)
    return total(numbers=c.outputs['numbers']).outputs['sum']


if __name__ == '__main__':
    compiler.Compiler().compile(count_pipeline, 'pipeline.yaml')
