"""Paper reference files: they load, hold the paper's printed numbers, and a miss is one line."""

import pytest

from merbench.errors import MerbenchError
from merbench.models.hff import HFF
from merbench.references import load_reference, reference_names


def test_every_reference_file_loads():
    assert {"hff", "hrdf_mer", "mcn_cl"} <= set(reference_names())
    for name in reference_names():
        assert load_reference(name)["citation"]


def test_hff_tables_as_printed():
    tables = load_reference("hff")["tables"]
    assert tables["table2"]["rows"]["hff"] == {"acc7": 52.8, "acc2": 84.6}
    assert tables["table3"]["rows"]["cogmen"]["wf1"] == 67.6
    assert tables["table3"]["rows"]["hff"]["wf1"] == 69.7
    table4 = tables["table4"]
    # Table 4's rows are HFF's switches (every switch but merbench's own "uncertainty").
    assert set(table4["rows"]) - {"full"} == set(HFF.components) - {"uncertainty"}
    for switch, title in table4["row_titles"].items():
        if switch != "full":
            assert HFF.component_titles[switch] == title
    assert all(len(row) == len(table4["columns"]) for row in table4["rows"].values())
    assert table4["rows"]["attention"]["S+T+V"] == 65.9
    assert sorted(tables["table5"]["rows"]) == [4, 6, 8, 10]
    assert tables["table5"]["rows"][8]["iemocap_f1"] == 69.5


def test_abstract_only_papers_state_no_invented_numbers():
    assert [c["gain"] for c in load_reference("mcn_cl")["claims"]] == [3.42, 5.73]
    hrdf = load_reference("hrdf_mer")
    assert hrdf["claims"] == [] and hrdf["tables"] == {}


def test_unknown_reference_is_one_line_error():
    with pytest.raises(MerbenchError, match=r"hf\.yaml: no reference file for 'hf' \(did you mean 'hff'\?\)") as info:
        load_reference("hf")
    assert "\n" not in str(info.value)
