import pytest

from checks.names import SubmissionName, parse_submission_name, strip_reply_prefixes


@pytest.mark.parametrize("text,expected", [
    ("张伟+物理系+健康宝弹窗.zip", ("张伟", "物理系")),
    ("张伟＋物理系＋健康宝弹窗", ("张伟", "物理系")),
    ("张伟 + 物理系 + 健康宝弹窗.ZIP", ("张伟", "物理系")),
    ("Re: 张伟+物理系+健康宝弹窗", ("张伟", "物理系")),
    ("回复：转发: RE：张伟+物理系+健康宝弹窗", ("张伟", "物理系")),
    ("Fwd:张伟+物理系+健康宝弹窗", ("张伟", "物理系")),
    ("【补交】李喆+化学(系)+健康宝弹窗材料", ("李喆", "化学（系）")),
    ("阿卜杜·热合曼+数学科学学院+健康宝弹窗", ("阿卜杜·热合曼", "数学科学学院")),
    ("Zhang Wei+Physics+健康宝弹窗", ("Zhang Wei", "Physics")),
])
def test_names_that_follow_the_rule(text, expected):
    assert parse_submission_name(text) == SubmissionName(*expected)


@pytest.mark.parametrize("text", [
    "", None, "健康宝弹窗", "张伟+物理系", "张伟+物理系+核酸", "张伟+物理系+健康宝弹窗+多余",
    "+物理系+健康宝弹窗", "张伟++健康宝弹窗", "请问健康宝弹窗怎么办",
])
def test_names_that_do_not(text):
    assert parse_submission_name(text) is None


def test_suffix_is_the_operators():
    assert parse_submission_name("张伟+物理系+弹窗材料", suffix="弹窗材料") == SubmissionName("张伟", "物理系")


def test_prefixes_are_stripped_repeatedly_but_not_inside():
    assert strip_reply_prefixes("Re: 回复：Re：关于 Re: 的问题") == "关于 Re: 的问题"


@pytest.mark.parametrize("subject", [
    "Re: 材料未齐：李喆+化学系+健康宝弹窗，请补充", "回复：已收齐：李喆+化学系+健康宝弹窗材料",
    "Re: 请补交新的核酸结果：李喆+化学系+健康宝弹窗", "答复: 材料未通过审核：李喆+化学系+健康宝弹窗",
])
def test_our_reply_subjects_answered_name_the_case(subject):
    assert parse_submission_name(subject) == SubmissionName("李喆", "化学系")
