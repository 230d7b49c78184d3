"""Every option of ``radmap analyze`` is checked for type and range before any work."""

from __future__ import annotations

import pytest
from radmap.analysis import analyses, associate, bundle, modules, options, pp
from radmap.analysis.pipeline import Config
from radmap.analysis.validate import InputError


def test_choices_are_the_stages_own():
    assert options.SCALES == pp.SCALES
    assert options.MODULE_METHODS == modules.METHODS
    assert options.NETWORKS == modules.NETWORKS
    assert options.CONTINUOUS_TESTS == associate.CONTINUOUS_TESTS
    assert options.BINARY_TESTS == associate.BINARY_TESTS
    assert options.CATEGORICAL_TESTS == associate.CATEGORICAL_TESTS
    assert options.FEATURE_TYPES == bundle.FEATURE_TYPES
    assert options.FAMILIES == analyses.FAMILY_CHOICES
    assert set(options.RULES) == {name for name in Config.__dataclass_fields__}


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("hub_count = -5", "'hub_count' must be at least 1"),
        ("[modules]\nhub_count = 0", "'hub_count' must be at least 1"),
        ('seed = "one"', "'seed' must be a whole number"),
        ("seed = -1", "'seed' must be between 0"),
        ("n_top_genes = 2.5", "'n_top_genes' must be a whole number or 'all'"),
        ('n_top_genes = "most"', "'n_top_genes' must be a whole number or 'all'"),
        ("max_block_size = 10", "'max_block_size' must be at least 100"),
        ("min_module_size = true", "'min_module_size' must be a whole number"),
        ('derive_survival = "yes"', "'derive_survival' must be true or false"),
        ("max_missing = 1.5", "'max_missing' must be between 0 and 1"),
        ("merge_cut_height = nan", "'merge_cut_height' must be a number"),
        ('orientation = "sideways"', "'orientation' must be one of auto"),
        ('module_method = "kmeans"', "'module_method' must be one of wgcna, leiden"),
        ("imaging = 5", "'imaging' must be text or a list of text"),
        ("expression = [1, 2]", "'expression' must be text"),
        ("covariates = [1, 2]", "'covariates' must be text or a list of text"),
        ('[feature_types]\nsize = "big"', "feature 'size' has type 'big'"),
        ('id_pattern = "(R01"', "'id_pattern' is not a valid regular expression"),
        ("power = 0", "'power' must be between 1 and 50"),
        ("min_set_size = 10\nmax_set_size = 5", "'max_set_size' (5) is below"),
        ('name = ["a"]', "'name' must be text"),
    ],
)
def test_bad_config_values_name_the_option(tmp_path, toml, message):
    path = tmp_path / "radmap.toml"
    path.write_text(toml + "\n")
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")) as error:
        Config.from_toml(path)
    assert str(path) in str(error.value)


def test_good_values_pass_and_a_python_config_is_checked_too(tmp_path):
    path = tmp_path / "radmap.toml"
    path.write_text('hub_count = 3\nmax_missing = 0\nclip_mad = -1\npower = 6\nimaging = "a.csv"\n')
    config = Config.from_toml(path)
    assert config.hub_count == 3 and config.imaging == [tmp_path / "a.csv"]
    path.write_text('n_top_genes = "all"\nmax_block_size = 12000\n')
    config = Config.from_toml(path)
    assert config.n_top_genes == "all" and config.max_block_size == 12000
    with pytest.raises(InputError, match="'hub_count' must be at least 1"):
        options.check_config(Config(hub_count=-5))


def test_reserved_column_names_are_refused():
    options.check_columns(["index", "_Index2", "Age"], "clinical.csv")
    with pytest.raises(InputError, match="clinical.csv: column '_index' is a name reserved"):
        options.check_columns(["Age", "_index"], "clinical.csv")
