class LayerKernels(Module):
  __parameters__ = []
  __buffers__ = []
  training : bool
  # One decoder layer's forward pass for scoring and its backward pass to the inputs (no weight gradients), in
  # TorchScript: libtorch compiles this when LayerKernels.java loads it, so the layer runs fused kernels DJL 0.36's JNI
  # does not expose (silu and its derivative, softmax's backward, addmm into the residual stream). Names as in
  # modeling_llama.py; shapes: b batch, t positions, n query heads over k key/value heads (g = n / k), d head_dim.
  #
  # Query heads are stacked by the key/value head they share: q is (b, k, g*t, d), so grouped-query attention needs no
  # repeated keys or values, and the backward pass of one product sums each group's gradients.
  # Optional tensors (biases, Qwen3's q/k norms) are passed as empty tensors when absent.
  #
  # The kernels compute in the type of the layer's input and weights (float32, float64, or bfloat16 copies made by
  # to_bfloat16): the RoPE tables, the mask and the incoming gradient are converted to it here, and the Taylor sums are
  # summed in float32 at least.

  def to_bfloat16(self: __torch__.LayerKernels, x: Tensor) -> Tensor:
    return torch.to(x, 15)

  def to_float(self: __torch__.LayerKernels, x: Tensor) -> Tensor:
    return torch.to(x, 6)

  def same(self: __torch__.LayerKernels, x: Tensor) -> Tensor:
    # x itself: a second handle on it, which its holder may close
    return x

  def sum_of_abs(self: __torch__.LayerKernels, x: Tensor, dims: List[int]) -> Tensor:
    # the sum of |x| over dims, in float32 at least; overwrites x unless it is bfloat16
    if x.dtype == 15:
      x = torch.to(x, 6)
    return torch.sum(torch.abs_(x), dims)

  def rms_norm(self: __torch__.LayerKernels, x: Tensor, weight: Tensor, eps: float) -> Tuple[Tensor, Tensor]:
    # x / sqrt(mean(x^2) + eps) * weight over the last dimension, and the inverse RMS the backward pass needs
    # (the norm reads x once and writes one value per row, where x * x wrote a whole copy)
    inverse_rms = torch.rsqrt(torch.pow(torch.linalg_vector_norm(x, 2., [-1], True), 2) / x.size(-1) + eps)
    y = torch.mul(x, inverse_rms)
    y.mul_(weight)
    return (y, inverse_rms)

  def rms_norm_backward(self: __torch__.LayerKernels, dy: Tensor, x: Tensor, inverse_rms: Tensor, weight: Tensor) -> Tensor:
    # y = x * r * w with r = (mean(x^2) + eps)^(-1/2):  dx = r * u - x * r^3 * mean(u * x),  u = dy * w
    # (one new array: u * x's, whose buffer then takes u)
    ux = torch.mul(dy, x)
    ux.mul_(weight)
    coefficient = torch.sum(ux, [-1], True) * torch.pow(inverse_rms, 3) / x.size(-1)
    u = torch.mul(dy, weight, out=ux)
    u.mul_(inverse_rms)
    u.addcmul_(x, coefficient, value=-1.0)
    return u

  def linear(self: __torch__.LayerKernels, x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    if bias.numel() > 0:
      return torch.linear(x, weight, bias)
    return torch.linear(x, weight)

  def swap(self: __torch__.LayerKernels, x: Tensor, interleaved: bool) -> Tensor:
    # the rotation's pairing without its signs (those are in the sine tables): halves (x1, x2) -> (x2, x1), or each
    # pair (a, b) -> (b, a); its own inverse
    if interleaved:
      return torch.flip(x.unflatten(-1, [-1, 2]), [-1]).flatten(-2)
    return torch.roll(x, [x.size(-1) // 2], [-1])

  def rope(self: __torch__.LayerKernels, x: Tensor, cos: Tensor, sin: Tensor, interleaved: bool) -> Tensor:
    # x (b, t, heads, d) to (b, heads, t, d), contiguous: x * cos + swap(x) * sin, the signs and any scale in the tables
    x = torch.transpose(x, 1, 2)
    y = torch.mul(x, cos, out=torch.empty(x.size(), dtype=x.dtype))
    y.addcmul_(self.swap(x, interleaved), sin)
    return y

  def rope_backward(self: __torch__.LayerKernels, dy: Tensor, cos: Tensor, sin: Tensor, interleaved: bool) -> Tensor:
    # dx = dy * cos + swap(dy * sin) = dy * cos - swap(dy) * sin: swap(sin) = -sin, each pair sharing its frequency;
    # back to (b, t, heads, d), contiguous
    b, h, t, d = dy.size(0), dy.size(1), dy.size(2), dy.size(3)
    dx = torch.empty([b, t, h, d], dtype=dy.dtype)
    torch.mul(dy, cos, out=torch.transpose(dx, 1, 2))
    torch.transpose(dx, 1, 2).addcmul_(self.swap(dy, interleaved), sin, value=-1.0)
    return dx

  def attention_block(self: __torch__.LayerKernels, hidden: Tensor, input_layernorm: Tensor, q_proj: Tensor, q_bias: Tensor,
                      k_proj: Tensor, k_bias: Tensor, v_proj: Tensor, v_bias: Tensor, q_norm: Tensor, k_norm: Tensor,
                      o_proj: Tensor, cos_q: Tensor, sin_q: Tensor, cos_k: Tensor, sin_k: Tensor, mask: Tensor,
                      eps: float, heads: int, kv_heads: int, interleaved: bool, score_elements: int) -> List[Tensor]:
    # h_mid = hidden + o_proj(attention(input_layernorm(hidden))); returns [h_mid, o (b, n, t, d), what the backward
    # pass needs: inverse_rms, q, k, v, q and k before their norms and those norms' inverse RMS (Qwen3; else empty),
    # then the attention probabilities, one (b, k', g*t, t) tensor per group of k' key/value heads]
    b, t = hidden.size(0), hidden.size(1)
    d = q_proj.size(0) // heads
    g = heads // kv_heads
    cos_q, sin_q, cos_k, sin_k = cos_q.type_as(hidden), sin_q.type_as(hidden), cos_k.type_as(hidden), sin_k.type_as(hidden)
    mask = mask.type_as(hidden)
    x, inverse_rms = self.rms_norm(hidden, input_layernorm, eps)
    q = self.linear(x, q_proj, q_bias).view([b, t, heads, d])
    k = self.linear(x, k_proj, k_bias).view([b, t, kv_heads, d])
    v = self.linear(x, v_proj, v_bias).view([b, t, kv_heads, d])
    empty = torch.empty([0], dtype=hidden.dtype)
    q_raw, k_raw, q_rms, k_rms = empty, empty, empty, empty
    if q_norm.numel() > 0:  # Qwen3 normalizes each head of q and k before RoPE
      q_raw, k_raw = q, k
      q, q_rms = self.rms_norm(q, q_norm, eps)
      k, k_rms = self.rms_norm(k, k_norm, eps)
    q = self.rope(q, cos_q, sin_q, interleaved).view([b, kv_heads, g * t, d])  # scaled by 1/sqrt(d) in its tables
    k = self.rope(k, cos_k, sin_k, interleaved)
    v = torch.transpose(v, 1, 2).contiguous()
    per_group = max(1, min(kv_heads, score_elements // (b * g * t * t)))
    probabilities: List[Tensor] = []
    outputs: List[Tensor] = []
    for first in range(0, kv_heads, per_group):
      last = min(first + per_group, kv_heads)
      scores = torch.matmul(q[:, first:last], torch.transpose(k[:, first:last], 2, 3))
      scores.view([b, last - first, g, t, t]).add_(mask)  # each stacked head's rows: the mask, broadcast
      p = torch._softmax(scores, -1, False)
      probabilities.append(p)
      outputs.append(torch.matmul(p, v[:, first:last]))
    o = outputs[0] if len(outputs) == 1 else torch.cat(outputs, 1)
    o = o.view([b, heads, t, d])
    attended = torch.transpose(o, 1, 2).reshape([b * t, heads * d])
    h_mid = torch.addmm(hidden.view([b * t, -1]), attended, torch.t(o_proj)).view(hidden.size())
    return [h_mid, o, inverse_rms, q, k, v, q_raw, k_raw, q_rms, k_rms] + probabilities

  def attention_block_backward(self: __torch__.LayerKernels, saved: List[Tensor], hidden: Tensor, d_h_mid: Tensor,
                               input_layernorm: Tensor, q_proj: Tensor, k_proj: Tensor, v_proj: Tensor, q_norm: Tensor,
                               k_norm: Tensor, o_proj: Tensor, cos_q: Tensor, sin_q: Tensor, cos_k: Tensor, sin_k: Tensor,
                               heads: int, kv_heads: int, interleaved: bool, input_gradient: bool) -> List[Tensor]:
    # from dL/dh_mid: [the Taylor sums of O per head, dL/dhidden (empty unless input_gradient)]
    o, inverse_rms, q, k, v = saved[1], saved[2], saved[3], saved[4], saved[5]
    q_raw, k_raw, q_rms, k_rms = saved[6], saved[7], saved[8], saved[9]
    probabilities = saved[10:]
    b, t, d = hidden.size(0), hidden.size(1), o.size(3)
    g = heads // kv_heads
    cos_q, sin_q, cos_k, sin_k = cos_q.type_as(hidden), sin_q.type_as(hidden), cos_k.type_as(hidden), sin_k.type_as(hidden)
    d_attended = torch.mm(d_h_mid.view([b * t, -1]), o_proj).view([b, t, heads, d])
    d_o = torch.transpose(d_attended, 1, 2).contiguous()  # (b, n, t, d)
    head_taylor = self.sum_of_abs(o * d_o, [0, 2, 3])
    if input_gradient == False:  # ("not input..." would lex as "not in")
      return [head_taylor, torch.empty([0], dtype=hidden.dtype)]
    d_o = d_o.view([b, kv_heads, g * t, d])
    d_q_parts: List[Tensor] = []
    d_k_parts: List[Tensor] = []
    d_v_parts: List[Tensor] = []
    first = 0
    for p in probabilities:
      last = first + p.size(1)
      d_o_group = d_o[:, first:last]
      d_v_parts.append(torch.matmul(torch.transpose(p, 2, 3), d_o_group))
      d_p = torch.matmul(d_o_group, torch.transpose(v[:, first:last], 2, 3))
      d_scores = torch._softmax_backward_data(d_p, p, -1, p.dtype)
      d_q_parts.append(torch.matmul(d_scores, k[:, first:last]))
      d_k_parts.append(torch.matmul(torch.transpose(d_scores, 2, 3), q[:, first:last]))
      first = last
    d_q = d_q_parts[0] if len(d_q_parts) == 1 else torch.cat(d_q_parts, 1)
    d_k = d_k_parts[0] if len(d_k_parts) == 1 else torch.cat(d_k_parts, 1)
    d_v = d_v_parts[0] if len(d_v_parts) == 1 else torch.cat(d_v_parts, 1)
    d_q = self.rope_backward(d_q.view([b, heads, t, d]), cos_q, sin_q, interleaved)  # (b, t, n, d)
    d_k = self.rope_backward(d_k, cos_k, sin_k, interleaved)
    if q_norm.numel() > 0:
      d_q = self.rms_norm_backward(d_q, q_raw, q_rms, q_norm)
      d_k = self.rms_norm_backward(d_k, k_raw, k_rms, k_norm)
    d_v = torch.transpose(d_v, 1, 2).reshape([b * t, -1])
    d_x = torch.mm(d_q.view([b * t, -1]), q_proj)
    d_x.addmm_(d_k.view([b * t, -1]), k_proj)
    d_x.addmm_(d_v, v_proj)
    d_hidden = self.rms_norm_backward(d_x.view(hidden.size()), hidden, inverse_rms, input_layernorm)
    d_hidden.add_(d_h_mid)
    return [head_taylor, d_hidden]

  def mlp_forward(self: __torch__.LayerKernels, h_mid: Tensor, post_attention_layernorm: Tensor, gate_proj: Tensor,
                  up_proj: Tensor, eps: float) -> List[Tensor]:
    # A = silu(gate) * up, gate = z gate_proj^T, up = z up_proj^T, z = post_attention_layernorm(h_mid);
    # returns [A, silu(gate), up * silu'(gate), z's inverse RMS]
    z, inverse_rms = self.rms_norm(h_mid, post_attention_layernorm, eps)
    gate = torch.matmul(z, torch.t(gate_proj))
    up = torch.matmul(z, torch.t(up_proj))
    silu = torch.silu(gate)
    up_times_silu_grad = torch.silu_backward(up, gate)
    a = up.mul_(silu)
    return [a, silu, up_times_silu_grad, inverse_rms]

  def mlp_output(self: __torch__.LayerKernels, h_mid: Tensor, a: Tensor, down_proj: Tensor) -> Tensor:
    # the layer's output h_mid + A down_proj^T
    return torch.addmm(h_mid.view([-1, h_mid.size(-1)]), a.view([-1, a.size(-1)]), torch.t(down_proj)).view(h_mid.size())

  def mlp_backward(self: __torch__.LayerKernels, g: Tensor, h_mid: Tensor, saved: List[Tensor],
                   post_attention_layernorm: Tensor, gate_proj: Tensor, up_proj: Tensor, down_proj: Tensor) -> List[Tensor]:
    # from g = dL/d of the layer's output: [the Taylor sums of A per neuron, dL/dh_mid]
    a, silu, up_times_silu_grad, inverse_rms = saved[0], saved[1], saved[2], saved[3]
    g = g.type_as(h_mid)
    d_a = torch.matmul(g, down_proj)
    product = a * d_a
    mlp_taylor = self.sum_of_abs(product, [0, 1])
    d_gate = torch.mul(d_a, up_times_silu_grad, out=product)  # the product's buffer, just used: in cache's reach
    d_up = d_a.mul_(silu)
    d_z = torch.matmul(d_gate, gate_proj)
    d_z.view([-1, d_z.size(-1)]).addmm_(d_up.view([-1, d_up.size(-1)]), up_proj)
    d_h_mid = self.rms_norm_backward(d_z, h_mid, inverse_rms, post_attention_layernorm)
    d_h_mid.add_(g)
    return [mlp_taylor, d_h_mid]
