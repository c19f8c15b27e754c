# Copyright (c) mmdynamic contributors. All rights reserved.
"""Plot of a budget report: metric vs GMACs."""
import os
import os.path as osp
from typing import Dict


def plot_budget_report(report: Dict, path: str, title: str = '') -> str:
    """Draw the budget curve, the anytime points, the requested budgets and the reference point.

    Args:
        report (dict): A report of :func:`mmdynamic.evaluation.build_report`.
        path (str): The PNG to write.
        title (str): Figure title. Defaults to the model name.

    Returns:
        str: ``path``.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    name = report['metric']
    fig, ax = plt.subplots(figsize=(6, 4.2), dpi=120)
    curve = sorted(report['curve'])
    if curve:
        ax.plot([c[0] for c in curve], [c[1] for c in curve], '-o', ms=3, lw=1.5,
                label=f"early exit ({report.get('confidence')}, fit on {report.get('fit_split')})")
    ax.plot(report['exit_flops'], report['anytime'], 's--', ms=4, lw=1, color='gray',
            label='anytime (fixed number of steps)')
    for entry in report['budgets']:
        ax.axvline(entry['budget_gmacs'], color='tab:red', lw=0.8, ls=':')
        ax.plot(entry['gmacs'], entry['metric'], '*', ms=11, color='tab:red')
    if report['budgets']:
        ax.plot([], [], '*', color='tab:red', label='requested budgets')
    ref = report.get('reference')
    if ref:
        ax.plot(ref['gmacs'], ref['metric'], 'D', ms=7, color='black',
                label=ref.get('name', 'static backbone'))
    ax.set_xlabel('GMACs per sample')
    ax.set_ylabel(name + (' (%)' if name in ('top1', 'mAP') else ''))
    ax.set_title(title or report.get('model', ''))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc='lower right')
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
