# Copyright (c) mmdynamic contributors. All rights reserved.
"""The feature-reuse classifier f_C of Uni-AdaFocus / AdaFocusV2 (spec §2.6).

Temporal accumulated max-pooling (FrameExit): every global vector and every local vector goes through an
MLP (Linear -> BN1d -> ReLU); a running element-wise max over time summarises the frames seen so far.
One linear head per step gives a prediction after every step:

- T_G *glance exits*: ``logits_k = head^G_k(dropout(max(z^G_1..z^G_k)))``;
- T_L *focus exits*: ``logits_{T_G + k} = head^L_k(dropout([max(z^L_1..z^L_k), max(z^G_1..z^G_{T_G})]))``
  (the global summary is reused by every focus exit).

The step-wise methods (:meth:`glance`, and :meth:`focus_step` = :meth:`embed_local` +
:meth:`focus_exit`) compute exactly what the batched :meth:`forward` computes, one step at a time, with
the running maxima as explicit state; :meth:`embed_local` takes several focus frames at once.
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
from mmengine.model import BaseModule


def _mlp(in_channels: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_channels, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True))


class FeatureReuseHead(BaseModule):
    """Accumulated max-pooling classifier with one head per step.

    Args:
        global_channels (int): C_G of the pooled global features (1280).
        local_channels (int): C_L of the pooled local features (2048).
        num_classes (int): Number of classes.
        num_glance (int): T_G glance exits.
        num_focus (int): T_L focus exits.
        hidden_channels (int): Width of the MLPs. Defaults to 4096.
        dropout (float): Dropout before every head. Defaults to 0.2.
        init_cfg (dict, optional): Initialisation config.

    Example:
        >>> head = FeatureReuseHead(8, 16, num_classes=5, num_glance=4, num_focus=3, hidden_channels=32)
        >>> tuple(head(torch.rand(2, 4, 8), torch.rand(2, 3, 16)).shape)
        (2, 7, 5)
    """

    def __init__(self, global_channels: int, local_channels: int, num_classes: int,
                 num_glance: int, num_focus: int, hidden_channels: int = 4096,
                 dropout: float = 0.2, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.num_glance = num_glance
        self.num_focus = num_focus
        self.global_mlp = _mlp(global_channels, hidden_channels)
        self.local_mlp = _mlp(local_channels, hidden_channels)
        self.dropout = nn.Dropout(dropout)
        self.glance_heads = nn.ModuleList(
            nn.Linear(hidden_channels, num_classes) for _ in range(num_glance))
        self.focus_heads = nn.ModuleList(
            nn.Linear(2 * hidden_channels, num_classes) for _ in range(num_focus))

    @staticmethod
    def _embed(mlp: nn.Module, feats: torch.Tensor) -> torch.Tensor:
        batch, steps = feats.shape[:2]
        return mlp(feats.flatten(0, 1)).view(batch, steps, -1)

    def forward(self, global_feats: torch.Tensor, local_feats: torch.Tensor) -> torch.Tensor:
        """All exits at once.

        Args:
            global_feats (Tensor): (B, T_G, C_G). local_feats (Tensor): (B, T_L', C_L), T_L' <= T_L.

        Returns:
            Tensor: (B, T_G + T_L', num_classes) logits of every step.
        """
        run_g = self._embed(self.global_mlp, global_feats).cummax(dim=1).values
        run_l = self._embed(self.local_mlp, local_feats).cummax(dim=1).values
        final_g = run_g[:, -1:].expand(-1, run_l.shape[1], -1)
        fused = torch.cat([run_l, final_g], dim=-1)
        logits = [head(self.dropout(run_g[:, k])) for k, head in enumerate(self.glance_heads)]
        logits += [self.focus_heads[k](self.dropout(fused[:, k])) for k in range(run_l.shape[1])]
        return torch.stack(logits, dim=1)

    def glance(self, global_feats: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """The last glance exit. Args: global_feats (B, T_G, C_G).

        Returns:
            tuple: logits (B, num_classes) of glance exit T_G and the global summary (B, hidden).
        """
        summary = self._embed(self.global_mlp, global_feats).amax(dim=1)
        return self.glance_heads[-1](self.dropout(summary)), summary

    def embed_local(self, local_feats: torch.Tensor) -> torch.Tensor:
        """The local MLP on focus features (one matrix product for all of them).

        Args:
            local_feats (Tensor): (B, n, C_L) local features of n focus frames.

        Returns:
            Tensor: (B, n, hidden) their embeddings, the input of :meth:`focus_exit`.
        """
        return self._embed(self.local_mlp, local_feats)

    def focus_exit(self, index: int, embedding: torch.Tensor, running: Optional[torch.Tensor],
                   summary: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Focus exit ``index`` (0-based) from the embedding of its focus frame.

        Args:
            embedding (Tensor): (B, hidden) :meth:`embed_local` of focus frame ``index``.
            running (Tensor, optional): (B, hidden) running max of the previous local embeddings.
            summary (Tensor): (B, hidden) global summary from :meth:`glance`.

        Returns:
            tuple: logits (B, num_classes) and the new running max (B, hidden).
        """
        running = embedding if running is None else torch.maximum(running, embedding)
        fused = torch.cat([running, summary], dim=-1)
        return self.focus_heads[index](self.dropout(fused)), running

    def focus_step(self, index: int, local_feat: torch.Tensor, running: Optional[torch.Tensor],
                   summary: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Focus exit ``index`` (0-based) from the local features of its frame: :meth:`embed_local`
        then :meth:`focus_exit`.

        Args:
            local_feat (Tensor): (B, C_L) local features of focus frame ``index``.
            running (Tensor, optional): (B, hidden) running max of the previous local embeddings.
            summary (Tensor): (B, hidden) global summary from :meth:`glance`.

        Returns:
            tuple: logits (B, num_classes) and the new running max (B, hidden).
        """
        return self.focus_exit(index, self.local_mlp(local_feat), running, summary)


class ConcatMaxPoolHead(BaseModule):
    """AdaFocusV2's classifier: an MLP on ``[global, local]`` of each frame, a running max over time,
    one linear head per step (spec §2.6).

    Args:
        in_channels (int): C_G + C_L.
        num_classes (int): Number of classes.
        num_steps (int): T exits.
        hidden_channels (int): Width of the MLP. Defaults to 4096.
        dropout (float): Dropout before every head. Defaults to 0.2.
        init_cfg (dict, optional): Initialisation config.

    Example:
        >>> head = ConcatMaxPoolHead(12, num_classes=5, num_steps=3, hidden_channels=32)
        >>> tuple(head(torch.rand(2, 3, 12)).shape)
        (2, 3, 5)
    """

    def __init__(self, in_channels: int, num_classes: int, num_steps: int,
                 hidden_channels: int = 4096, dropout: float = 0.2,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.mlp = _mlp(in_channels, hidden_channels)
        self.dropout = nn.Dropout(dropout)
        self.heads = nn.ModuleList(nn.Linear(hidden_channels, num_classes) for _ in range(num_steps))

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """Args: feats (Tensor): (B, T', C) with T' <= T. Returns: (B, T', num_classes)."""
        batch, steps = feats.shape[:2]
        running = self.mlp(feats.flatten(0, 1)).view(batch, steps, -1).cummax(dim=1).values
        return torch.stack([self.heads[k](self.dropout(running[:, k])) for k in range(steps)], dim=1)

    def step(self, index: int, feat: torch.Tensor,
             running: Optional[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        """Exit ``index``. Args: feat (B, C); running (B, hidden) or None.

        Returns:
            tuple: logits (B, num_classes) and the new running max (B, hidden).
        """
        z = self.mlp(feat)
        running = z if running is None else torch.maximum(running, z)
        return self.heads[index](self.dropout(running)), running
