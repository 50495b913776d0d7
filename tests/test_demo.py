"""The README's main command (scripts/demo, less its install step) keeps working."""
from __future__ import annotations

import subprocess
import sys

from tests.support.harness import REPO


def test_demo_runs_the_main_job_end_to_end():
    result = subprocess.run([sys.executable, "-m", "tests.support.demo"], cwd=REPO, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "所有模板都能生成" in out
    assert "提交材料 5 封" in out and "已处理：没有新邮件" in out
    assert "汇总 1：报送 1 个登记" in out and "1 个登记等待审核" in out, "孙八 waits for approval"
    assert "审核提醒：列出 2 个" in out and "等待审核" in out
    # The register the office gets is filled from what was read on the drawn pictures.
    assert "| 1 | 张伟 | 北京市昌平区府学路18号 | 13800138000 | 良好 | 11010519491231002X | 否 | " in out
    assert "情况属实、同意解除健康宝异常" in out
    assert "已收齐：张伟+物理系+健康宝弹窗材料" in out
    assert "[attachment] 张伟+物理系+健康宝弹窗.zip" in out
    assert "设置了密码" in out and "RAR 格式" in out
    assert "[attachment] 附件1 承诺书.docx" in out and "[attachment] 附件2 健康宝异常人员信息登记表.xlsx" in out
    assert "联系人：学生工作办公室 王老师" in out and "【物理系】健康宝弹窗材料汇总" in out
    assert "登记编号" in out and "案件编号" not in out


def test_demo_keep_leaves_config_database_and_every_sent_mail(tmp_path):
    import email
    import email.policy
    import re
    import shutil
    from pathlib import Path

    result = subprocess.run([sys.executable, "-m", "tests.support.demo", "--keep"], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    [work] = re.findall(r"kept the work folder: (\S+)", result.stdout)
    work = Path(work)
    try:
        assert (work / "intake.toml").is_file() and (work / "var" / "intake.db").is_file()
        sent = sorted((work / "sent").glob("*.eml"))
        count = int(re.search(r"(\d+) mail\(s\) sent", result.stdout).group(1))
        assert len(sent) == count > 0
        subjects = [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)["Subject"]
                    for p in sent]
        assert any("健康宝" in subject for subject in subjects)
        assert all(p.stat().st_mode & 0o077 == 0 for p in sent)
        assert "汇总 1" in result.stdout and "；已发送" in result.stdout
    finally:
        shutil.rmtree(work.parent, ignore_errors=True)
