"""The kfp.Client flow against a Skiff server: python3 kfp_client_flow.py URL DIR.

Each step prints "ok STEP"; the first failure raises (non-zero exit).
"""
import sys
import time

import kfp
from kfp import compiler, dsl

host, out = sys.argv[1], sys.argv[2]
client = kfp.Client(host=host)


@dsl.container_component
def echo(msg: str):
    return dsl.ContainerSpec(image='alpine', command=['echo', msg])


@dsl.container_component
def nap():
    return dsl.ContainerSpec(image='alpine', command=['sleep', '300'])


@dsl.pipeline(name='client-hello')
def hello(msg: str = 'hi'):
    echo(msg=msg)


@dsl.pipeline(name='client-nap')
def sleeper():
    nap()


def ok(step):
    print('ok', step, flush=True)


package = out + '/hello.yaml'
compiler.Compiler().compile(hello, package)

pipeline = client.upload_pipeline(package, pipeline_name='client-hello')
assert client.get_pipeline(pipeline.pipeline_id).display_name == 'client-hello'
ok('upload_pipeline')

exp = client.create_experiment('client-flow')
assert client.get_experiment(experiment_id=exp.experiment_id).display_name == 'client-flow'
ok('create_experiment')

run = client.create_run_from_pipeline_package(package, arguments={'msg': 'from a package'}, experiment_name='client-flow')
done = client.wait_for_run_completion(run.run_id, timeout=120)
assert done.state == 'SUCCEEDED', done.state
ok('run from package, wait')

run2 = client.create_run_from_pipeline_func(hello, arguments={'msg': 'from a function'}, experiment_id=exp.experiment_id)
done = client.wait_for_run_completion(run2.run_id, timeout=120)
assert done.state == 'SUCCEEDED', done.state
ok('run from function, wait')

run3 = client.create_run_from_pipeline_func(sleeper, experiment_id=exp.experiment_id)
client.terminate_run(run3.run_id)
# kfp's wait_for_run_completion does not count CANCELED as finished (it
# waits until its timeout against KFP's backend too): poll get_run.
deadline = time.time() + 120
while client.get_run(run3.run_id).state != 'CANCELED':
    assert time.time() < deadline, client.get_run(run3.run_id).state
    time.sleep(0.5)
ok('terminate_run')

rec = client.create_recurring_run(experiment_id=exp.experiment_id, job_name='hourly', cron_expression='0 0 * * * *',
                                  pipeline_package_path=package, params={'msg': 'scheduled'})
assert client.get_recurring_run(rec.recurring_run_id).display_name == 'hourly'
client.disable_recurring_run(rec.recurring_run_id)
client.delete_recurring_run(rec.recurring_run_id)
ok('recurring run')

client.archive_run(run.run_id)
assert client.get_run(run.run_id).storage_state == 'ARCHIVED'
client.unarchive_run(run.run_id)
client.delete_run(run.run_id)
try:
    client.get_run(run.run_id)
    gone = False
except Exception:  # the API's 404
    gone = True
assert gone, 'deleted run still there'
ok('archive, unarchive, delete run')

client.archive_experiment(exp.experiment_id)
assert client.get_experiment(experiment_id=exp.experiment_id).storage_state == 'ARCHIVED'
ok('archive_experiment')

for v in client.list_pipeline_versions(pipeline.pipeline_id).pipeline_versions or []:
    client.delete_pipeline_version(pipeline.pipeline_id, v.pipeline_version_id)
client.delete_pipeline(pipeline.pipeline_id)
ok('delete pipeline')
print('FLOW OK')
