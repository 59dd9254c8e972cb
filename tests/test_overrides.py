"""check_overrides lets every legitimate command line through and refuses those that run code."""

import pytest

from runner.errors import ConfigError
from runner.overrides import check_overrides
from tests.helpers import compose_run_config

ACCEPTED = [
    [],
    ["-m"],
    ["--multirun", "batch=16,32,64", "lr=0.01,0.1"],
    ["--cfg", "job"],
    ["-c", "hydra", "-p", "hydra.searchpath"],  # printing the search path changes nothing
    ["--cfg=all", "--resolve"],
    ["--help"],
    ["--hydra-help"],
    ["--info"],
    ["-i", "defaults"],
    ["--version"],
    ["-sc"],
    ["--config-name", "config"],
    # A folder of the user's own configs, added Hydra's two ways (tests/test_user_configs.py).
    ["--config-dir", "/tmp/my_configs", "model=wide"],
    ["-cd=my_configs", "--config-name", "my_experiment"],
    ["hydra.searchpath=[file:///tmp/my_configs]", "model=wide"],
    ["hydra.searchpath=[my_configs,file://other]"],
    ["-cn=config"],
    ["batch=32"],
    ["lr=tag(log,interval(0.001,1))"],
    ["model=mlp_4_8_8_3,mlp_4_16_3"],
    ["model=choice(mlp_4_8_8_3,mlp_4_16_3)"],
    ["model=glob(mlp_4_*)"],
    ["model@model=mlp_4_16_3"],
    ["model=[mlp_4_16_3]"],
    ["model='0'"],  # quoted: a name, which Hydra then reports as not found
    ["model={layers:[4,3]}"],  # a dict sets keys of the node, chooses no option
    ["-m", "hydra/launcher=joblib"],
    ["hydra/sweeper=optuna_search", "hydra.sweeper.n_trials=30"],
    ["hydra.sweeper.params.model=choice(mlp_4_8_8_3,mlp_4_16_3)"],
    ["hydra.run.dir=/tmp/run"],  # a path value of an ordinary key
    ["hydra.job_logging.root.level=DEBUG"],
    ["model.layers=[4,16,3]"],
    ["+key=value"],
    ["++batch=8"],
    ["~early_stopping"],
    ["dataset=csv", "dataset.path=data/my.csv", "dataset.target=label"],
    ["dataset.path=../data/../my.csv"],
    ["init_from=/abs/weights.npz"],
    ["experiment=hit_target_v2"],  # _target_ inside a plain word is no dict key
    ["experiment='a $ sign {braces}'"],
    ["seed=-1"],
]


@pytest.mark.parametrize("args", ACCEPTED, ids=lambda args: " ".join(args) or "nothing")
def test_legitimate_command_lines_pass(args):
    check_overrides(args)


# (argument list, a pattern the message must match)
REFUSED = [
    (["+hydra.callbacks.x._target_=os.system"], r"_target_ would make Hydra import"),
    (["hydra.callbacks.sweep_tracking._target_=os.getcwd"], r"_target_"),
    (["+hydra.callbacks.x={_target_:os.system,command:ls}"], r"_target_"),
    (["hydra.sweeper.sampler._target_=builtins.eval"], r"_target_"),
    (["+x._partial_=true"], r"_partial_"),
    (["+hydra.callbacks.x._args_=[ls]"], r"_args_"),
    (["+x._recursive_=false"], r"_recursive_"),
    (["+x._convert_=all"], r"_convert_"),
    (["lr=${oc.env:HOME}"], r"'lr=\$\{oc\.env:HOME\}'.*interpolations"),
    (["experiment=${oc.decode:'{a: 1}'}"], r"interpolations"),
    (["experiment='${oc.env:AWS_SECRET_ACCESS_KEY}'"], r"interpolations"),
    (["batch=${lr}"], r"interpolations"),
    (["model=../../etc/passwd"], r"'model=\.\./\.\./etc/passwd'.*not a path.*runner/conf/model/"),
    (["dataset=/etc/passwd"], r"dataset= choice.*runner/conf/dataset/"),
    (["loss=..\\x"], r"loss= choice"),
    (["optimizer=sub/sgd"], r"optimizer= choice"),
    (["model=.."], r"model= choice"),
    (["model=C:evil"], r"model= choice"),
    (["model=mlp_4_8_8_3,../x"], r"model= choice"),
    (["model=choice(mlp_4_16_3,/tmp/x)"], r"model= choice"),
    (["+model@foo=../x"], r"model= choice"),
    (["hydra/launcher=../../tmp/evil"], r"hydra/launcher= choice.*hydra/launcher=joblib"),
    (["+hydra/callbacks=/tmp/evil"], r"hydra/callbacks= choice"),
    (["hydra.sweeper.params.model=choice(../x,mlp_4_16_3)"], r"model= choice"),
    (["hydra.searchpath=[pkg://evil]"], r"'pkg://evil' names a Python module.*imports it"),
    (["hydra.searchpath=[file:///tmp,structured://evil]"], r"'structured://evil' names a"),
    (["hydra.searchpath=[PKG://evil]"], r"names a Python module"),
    (["hydra.sweeper.params.hydra.searchpath=[pkg://evil]"], r"names a Python module"),
    (["+hydra.job.env_set.LD_PRELOAD=/tmp/x.so"], r"hydra.job.env_set"),
    (["hydra.sweeper.custom_search_space=os.system"], r"custom_search_space"),
    (["hydra.job_logging.handlers.console.class=subprocess.Popen"], r"logging"),
    (["+hydra.job_logging.handlers.x={class:subprocess.Popen,args:ls}"], r"logging"),
    (["+hydra.hydra_logging.formatters.x.stream=ext://os.environ"], r"logging"),
    (["--config-path=/tmp"], r"'--config-path=/tmp'.*replaces the runner's own.*--config-dir"),
    (["-cp", "/tmp"], r"'-cp'"),
    (["--experimental-rerun", "outputs/x/.hydra/config.pickle"], r"unpickles"),
    (["--exp=x.pickle"], r"unpickles"),
    (["--config-name", "../../tmp/evil"], r"--config-name.*is a path"),
    (["-cn=/tmp/evil"], r"--config-name.*is a path"),
    (["--cfg", "job", "batch=8", "lr=${oc.env:HOME}"], r"'lr="),  # found anywhere in the line
    (["model=a\nb/c"], r"'model=a\\nb/c'"),  # control characters stay on one line
    # Hydra raises a bare ValueError/TypeError (a traceback) for a group choice that is no name.
    (["model=0"], r"'model=0'.*reads '0' as a number"),
    (["dataset=1e3"], r"dataset= choice.*'1e3'"),
    (["loss=true"], r"loss= choice"),
    (["optimizer=null"], r"optimizer= choice"),
    (["model=nan"], r"model= choice"),
    (["optimizer=[1]"], r"optimizer= choice"),
    (["~model=0"], r"model= choice"),
    (["hydra/launcher=0"], r"hydra/launcher= choice"),
    # Not code, but a traceback from Hydra's composition: keys inside a deleted one.
    (["~dataset", "~dataset.val_fraction"], r"'~dataset' deletes dataset as a whole"),
    (["~dataset.val_fraction", "~dataset"], r"'~dataset' deletes dataset as a whole"),
    (["~dataset", "+dataset.val_fraction=0.1"], r"'~dataset' deletes dataset as a whole"),
]


@pytest.mark.parametrize(("args", "match"), REFUSED, ids=[" ".join(a) for a, _ in REFUSED])
def test_code_running_arguments_are_refused_in_one_line(args, match):
    with pytest.raises(ConfigError, match=match) as caught:
        check_overrides(args)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "override",
    ["batch=32", "model.layers=[4,16,3]", "dataset.val_fraction=0.1", "init_from=/w.npz"],
)
def test_accepted_overrides_are_ones_hydra_composes(override):
    """The accepted cases are real Hydra syntax, not text that only this check lets through."""
    check_overrides([override])
    compose_run_config(override)


def user_config_folder(folder):
    """A user's config folder with a group of its own, experiment/, beside a model."""
    (folder / "experiment").mkdir()
    (folder / "experiment" / "quick.yaml").write_text("# @package _global_\nepochs: 2\n")
    (folder / "model").mkdir()
    (folder / "model" / "wide.yaml").write_text("defaults: [base_model, _self_]\nname: wide\n")
    return folder


@pytest.mark.parametrize("adds_folder", ["--config-dir={}", "hydra.searchpath=[file://{}]"])
def test_groups_of_a_users_config_folder_refuse_paths_too(tmp_path, adds_folder):
    folder = user_config_folder(tmp_path)
    check_overrides([adds_folder.format(folder), "experiment=quick"])
    with pytest.raises(ConfigError, match=rf"experiment= choice.*{folder}/experiment/.*=quick"):
        check_overrides([adds_folder.format(folder), "experiment=../../tmp/evil"])
