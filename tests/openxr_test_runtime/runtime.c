/*
 * A headless OpenXR 1.0 runtime for surgplan's tests: no GPU, no X server, no headset.
 *
 * Found by the standard Khronos loader through XR_RUNTIME_JSON (manifest written by
 * tests/openxr_test_runtime/build.py). It implements the subset of OpenXR 1.0 a real
 * application uses, with the spec's result codes and call-order rules:
 *  - instance: loader negotiation (interface 1), xrGetInstanceProcAddr, extensions
 *    XR_KHR_opengl_enable (10) and XR_MNDX_egl_enable (1), xrGetInstanceProperties, xrGetSystem,
 *    xrGetSystemProperties, view configurations (PRIMARY_STEREO), blend modes, paths, events,
 *    xrGetOpenGLGraphicsRequirementsKHR, xrResultToString, xrStructureTypeToString;
 *  - session: EGL (XrGraphicsBindingEGLMNDX) or Xlib/GLX binding, begin/end/request-exit and
 *    the legal state sequence IDLE READY SYNCHRONIZED VISIBLE FOCUSED ... STOPPING IDLE EXITING;
 *  - spaces: VIEW, LOCAL (identity), STAGE (floor 1.6 m below LOCAL), action spaces,
 *    xrLocateSpace, xrLocateViews (ipd 0.064 m, fixed asymmetric fovs);
 *  - swapchains: GL_SRGB8_ALPHA8 / GL_RGBA8 textures made in the application's GL context
 *    (functions resolved at run time, no GL headers), acquire/wait/release order checks;
 *  - frame loop: 90 Hz predicted times, begin/end frame checks, projection and quad layers;
 *  - actions: sets, actions, suggested bindings, attach, sync, boolean/float/vector2f/pose
 *    states, haptics (ignored), two emulated controllers (oculus/touch_controller when
 *    suggested, else khr/simple_controller).
 * Test controls (environment): SURGPLAN_XR_TEST_NO_HMD, _VIEW_SIZE, _BLEND, _THROTTLE,
 * _CAPTURE_DIR, _CAPTURE_EVERY, _SCRIPT, _LOSE_AT_FRAME, _INSTANCE_LOST_AT_FRAME, _LOG.
 * What each does, the world model and the capture format (frames.jsonl + PPM images) are
 * documented in tests/openxr_test_runtime/build.py.
 *
 * The OpenXR and GL headers are not installed on these machines: the ABI types used are
 * declared here as the OpenXR 1.0 specification (and loader_interfaces.h) define them for
 * 64-bit Linux; surgplan_xr_test_struct_size() lets the tests compare them with pyopenxr.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <math.h> /* isfinite, fabsf: compiler built-ins */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------ OpenXR ABI --- */
typedef int32_t XrResult;
typedef int32_t XrStructureType;
typedef uint64_t XrVersion, XrSystemId, XrPath, XrFlags64;
typedef uint32_t XrBool32;
typedef int64_t XrTime, XrDuration;
typedef struct XrInstance_T *XrInstance;
typedef struct XrSession_T *XrSession;
typedef struct XrSpace_T *XrSpace;
typedef struct XrSwapchain_T *XrSwapchain;
typedef struct XrActionSet_T *XrActionSet;
typedef struct XrAction_T *XrAction;
typedef void (*PFN_xrVoidFunction)(void);
typedef XrResult (*PFN_xrGetInstanceProcAddr)(XrInstance, const char *, PFN_xrVoidFunction *);
typedef PFN_xrVoidFunction (*PFN_xrEglGetProcAddressMNDX)(const char *);

#define XR_MAKE_VERSION(major, minor, patch) \
    ((((uint64_t)(major) & 0xffffULL) << 48) | (((uint64_t)(minor) & 0xffffULL) << 32) | ((uint64_t)(patch) & 0xffffffffULL))
#define XR_VERSION_MAJOR(v) ((uint16_t)(((uint64_t)(v) >> 48) & 0xffffULL))
#define XR_NULL_PATH 0

enum {
    XR_SUCCESS = 0, XR_TIMEOUT_EXPIRED = 1, XR_SESSION_LOSS_PENDING = 3, XR_EVENT_UNAVAILABLE = 4,
    XR_SPACE_BOUNDS_UNAVAILABLE = 7, XR_SESSION_NOT_FOCUSED = 8, XR_FRAME_DISCARDED = 9,
    XR_ERROR_VALIDATION_FAILURE = -1, XR_ERROR_RUNTIME_FAILURE = -2, XR_ERROR_OUT_OF_MEMORY = -3,
    XR_ERROR_API_VERSION_UNSUPPORTED = -4, XR_ERROR_INITIALIZATION_FAILED = -6,
    XR_ERROR_FUNCTION_UNSUPPORTED = -7, XR_ERROR_FEATURE_UNSUPPORTED = -8,
    XR_ERROR_EXTENSION_NOT_PRESENT = -9, XR_ERROR_LIMIT_REACHED = -10, XR_ERROR_SIZE_INSUFFICIENT = -11,
    XR_ERROR_HANDLE_INVALID = -12, XR_ERROR_INSTANCE_LOST = -13, XR_ERROR_SESSION_RUNNING = -14,
    XR_ERROR_SESSION_NOT_RUNNING = -16, XR_ERROR_SESSION_LOST = -17, XR_ERROR_SYSTEM_INVALID = -18,
    XR_ERROR_PATH_INVALID = -19, XR_ERROR_PATH_COUNT_EXCEEDED = -20, XR_ERROR_PATH_FORMAT_INVALID = -21,
    XR_ERROR_PATH_UNSUPPORTED = -22, XR_ERROR_LAYER_INVALID = -23, XR_ERROR_LAYER_LIMIT_EXCEEDED = -24,
    XR_ERROR_SWAPCHAIN_RECT_INVALID = -25, XR_ERROR_SWAPCHAIN_FORMAT_UNSUPPORTED = -26,
    XR_ERROR_ACTION_TYPE_MISMATCH = -27, XR_ERROR_SESSION_NOT_READY = -28,
    XR_ERROR_SESSION_NOT_STOPPING = -29, XR_ERROR_TIME_INVALID = -30,
    XR_ERROR_REFERENCE_SPACE_UNSUPPORTED = -31, XR_ERROR_FILE_ACCESS_ERROR = -32,
    XR_ERROR_FILE_CONTENTS_INVALID = -33, XR_ERROR_FORM_FACTOR_UNSUPPORTED = -34,
    XR_ERROR_FORM_FACTOR_UNAVAILABLE = -35, XR_ERROR_API_LAYER_NOT_PRESENT = -36,
    XR_ERROR_CALL_ORDER_INVALID = -37, XR_ERROR_GRAPHICS_DEVICE_INVALID = -38,
    XR_ERROR_POSE_INVALID = -39, XR_ERROR_INDEX_OUT_OF_RANGE = -40,
    XR_ERROR_VIEW_CONFIGURATION_TYPE_UNSUPPORTED = -41, XR_ERROR_ENVIRONMENT_BLEND_MODE_UNSUPPORTED = -42,
    XR_ERROR_NAME_DUPLICATED = -44, XR_ERROR_NAME_INVALID = -45, XR_ERROR_ACTIONSET_NOT_ATTACHED = -46,
    XR_ERROR_ACTIONSETS_ALREADY_ATTACHED = -47, XR_ERROR_LOCALIZED_NAME_DUPLICATED = -48,
    XR_ERROR_LOCALIZED_NAME_INVALID = -49, XR_ERROR_GRAPHICS_REQUIREMENTS_CALL_MISSING = -50,
    XR_ERROR_RUNTIME_UNAVAILABLE = -51,
};
enum {
    XR_TYPE_API_LAYER_PROPERTIES = 1, XR_TYPE_EXTENSION_PROPERTIES = 2, XR_TYPE_INSTANCE_CREATE_INFO = 3,
    XR_TYPE_SYSTEM_GET_INFO = 4, XR_TYPE_SYSTEM_PROPERTIES = 5, XR_TYPE_VIEW_LOCATE_INFO = 6, XR_TYPE_VIEW = 7,
    XR_TYPE_SESSION_CREATE_INFO = 8, XR_TYPE_SWAPCHAIN_CREATE_INFO = 9, XR_TYPE_SESSION_BEGIN_INFO = 10,
    XR_TYPE_VIEW_STATE = 11, XR_TYPE_FRAME_END_INFO = 12, XR_TYPE_HAPTIC_VIBRATION = 13,
    XR_TYPE_EVENT_DATA_BUFFER = 16, XR_TYPE_EVENT_DATA_INSTANCE_LOSS_PENDING = 17,
    XR_TYPE_EVENT_DATA_SESSION_STATE_CHANGED = 18, XR_TYPE_ACTION_STATE_BOOLEAN = 23,
    XR_TYPE_ACTION_STATE_FLOAT = 24, XR_TYPE_ACTION_STATE_VECTOR2F = 25, XR_TYPE_ACTION_STATE_POSE = 27,
    XR_TYPE_ACTION_SET_CREATE_INFO = 28, XR_TYPE_ACTION_CREATE_INFO = 29, XR_TYPE_INSTANCE_PROPERTIES = 32,
    XR_TYPE_FRAME_WAIT_INFO = 33, XR_TYPE_COMPOSITION_LAYER_PROJECTION = 35,
    XR_TYPE_COMPOSITION_LAYER_QUAD = 36, XR_TYPE_REFERENCE_SPACE_CREATE_INFO = 37,
    XR_TYPE_ACTION_SPACE_CREATE_INFO = 38, XR_TYPE_VIEW_CONFIGURATION_VIEW = 41, XR_TYPE_SPACE_LOCATION = 42,
    XR_TYPE_SPACE_VELOCITY = 43, XR_TYPE_FRAME_STATE = 44, XR_TYPE_VIEW_CONFIGURATION_PROPERTIES = 45,
    XR_TYPE_FRAME_BEGIN_INFO = 46, XR_TYPE_COMPOSITION_LAYER_PROJECTION_VIEW = 48,
    XR_TYPE_INTERACTION_PROFILE_SUGGESTED_BINDING = 51, XR_TYPE_EVENT_DATA_INTERACTION_PROFILE_CHANGED = 52,
    XR_TYPE_INTERACTION_PROFILE_STATE = 53, XR_TYPE_SWAPCHAIN_IMAGE_ACQUIRE_INFO = 55,
    XR_TYPE_SWAPCHAIN_IMAGE_WAIT_INFO = 56, XR_TYPE_SWAPCHAIN_IMAGE_RELEASE_INFO = 57,
    XR_TYPE_ACTION_STATE_GET_INFO = 58, XR_TYPE_HAPTIC_ACTION_INFO = 59,
    XR_TYPE_SESSION_ACTION_SETS_ATTACH_INFO = 60, XR_TYPE_ACTIONS_SYNC_INFO = 61,
    XR_TYPE_BOUND_SOURCES_FOR_ACTION_ENUMERATE_INFO = 62,
    XR_TYPE_GRAPHICS_BINDING_OPENGL_XLIB_KHR = 1000023001, XR_TYPE_SWAPCHAIN_IMAGE_OPENGL_KHR = 1000023004,
    XR_TYPE_GRAPHICS_REQUIREMENTS_OPENGL_KHR = 1000023005, XR_TYPE_GRAPHICS_BINDING_EGL_MNDX = 1000048004,
};
enum { XR_LOADER_INTERFACE_STRUCT_LOADER_INFO = 1, XR_LOADER_INTERFACE_STRUCT_RUNTIME_REQUEST = 3 };
enum { ST_IDLE = 1, ST_READY, ST_SYNCHRONIZED, ST_VISIBLE, ST_FOCUSED, ST_STOPPING, ST_LOSS_PENDING, ST_EXITING };
enum { REF_VIEW = 1, REF_LOCAL = 2, REF_STAGE = 3 };
enum { STEREO = 2, BLEND_OPAQUE = 1, BLEND_ADDITIVE = 2 };
enum { ACT_BOOLEAN = 1, ACT_FLOAT = 2, ACT_VECTOR2F = 3, ACT_POSE = 4, ACT_VIBRATION = 100 };
#define LOCATION_ALL 0xfULL /* orientation/position valid + tracked (space location and view state) */

typedef struct { XrStructureType type; const void *next; } XrBaseInStructure;
typedef struct { float x, y, z, w; } XrQuaternionf;
typedef struct { float x, y, z; } XrVector3f;
typedef struct { XrQuaternionf orientation; XrVector3f position; } XrPosef;
typedef struct { float x, y; } XrVector2f;
typedef struct { float width, height; } XrExtent2Df;
typedef struct { int32_t x, y; } XrOffset2Di;
typedef struct { int32_t width, height; } XrExtent2Di;
typedef struct { XrOffset2Di offset; XrExtent2Di extent; } XrRect2Di;
typedef struct { float angleLeft, angleRight, angleUp, angleDown; } XrFovf;
typedef struct {
    char applicationName[128]; uint32_t applicationVersion;
    char engineName[128]; uint32_t engineVersion; XrVersion apiVersion;
} XrApplicationInfo;
typedef struct {
    XrStructureType type; const void *next; XrFlags64 createFlags; XrApplicationInfo applicationInfo;
    uint32_t enabledApiLayerCount; const char *const *enabledApiLayerNames;
    uint32_t enabledExtensionCount; const char *const *enabledExtensionNames;
} XrInstanceCreateInfo;
typedef struct { XrStructureType type; void *next; char extensionName[128]; uint32_t extensionVersion; } XrExtensionProperties;
typedef struct { XrStructureType type; void *next; XrVersion runtimeVersion; char runtimeName[128]; } XrInstanceProperties;
typedef struct { XrStructureType type; const void *next; int32_t formFactor; } XrSystemGetInfo;
typedef struct { uint32_t maxSwapchainImageHeight, maxSwapchainImageWidth, maxLayerCount; } XrSystemGraphicsProperties;
typedef struct { XrBool32 orientationTracking, positionTracking; } XrSystemTrackingProperties;
typedef struct {
    XrStructureType type; void *next; XrSystemId systemId; uint32_t vendorId; char systemName[256];
    XrSystemGraphicsProperties graphicsProperties; XrSystemTrackingProperties trackingProperties;
} XrSystemProperties;
typedef struct { XrStructureType type; void *next; int32_t viewConfigurationType; XrBool32 fovMutable; } XrViewConfigurationProperties;
typedef struct {
    XrStructureType type; void *next; uint32_t recommendedImageRectWidth, maxImageRectWidth,
    recommendedImageRectHeight, maxImageRectHeight, recommendedSwapchainSampleCount, maxSwapchainSampleCount;
} XrViewConfigurationView;
typedef struct { XrStructureType type; void *next; XrVersion minApiVersionSupported, maxApiVersionSupported; } XrGraphicsRequirementsOpenGLKHR;
typedef struct {
    XrStructureType type; const void *next; PFN_xrEglGetProcAddressMNDX getProcAddress;
    void *display, *config, *context;
} XrGraphicsBindingEGLMNDX;
typedef struct {
    XrStructureType type; const void *next; void *xDisplay; uint32_t visualid; void *glxFBConfig;
    unsigned long glxDrawable; void *glxContext;
} XrGraphicsBindingOpenGLXlibKHR;
typedef struct { XrStructureType type; const void *next; XrFlags64 createFlags; XrSystemId systemId; } XrSessionCreateInfo;
typedef struct { XrStructureType type; const void *next; int32_t primaryViewConfigurationType; } XrSessionBeginInfo;
typedef struct { XrStructureType type; const void *next; uint8_t varying[4000]; } XrEventDataBuffer;
typedef struct { XrStructureType type; const void *next; XrSession session; int32_t state; XrTime time; } XrEventDataSessionStateChanged;
typedef struct { XrStructureType type; const void *next; XrTime lossTime; } XrEventDataInstanceLossPending;
typedef struct { XrStructureType type; const void *next; XrSession session; } XrEventDataInteractionProfileChanged;
typedef struct { XrStructureType type; const void *next; int32_t referenceSpaceType; XrPosef poseInReferenceSpace; } XrReferenceSpaceCreateInfo;
typedef struct { XrStructureType type; const void *next; XrAction action; XrPath subactionPath; XrPosef poseInActionSpace; } XrActionSpaceCreateInfo;
typedef struct { XrStructureType type; void *next; XrFlags64 locationFlags; XrPosef pose; } XrSpaceLocation;
typedef struct { XrStructureType type; void *next; XrFlags64 velocityFlags; XrVector3f linearVelocity, angularVelocity; } XrSpaceVelocity;
typedef struct { XrStructureType type; const void *next; int32_t viewConfigurationType; XrTime displayTime; XrSpace space; } XrViewLocateInfo;
typedef struct { XrStructureType type; void *next; XrFlags64 viewStateFlags; } XrViewState;
typedef struct { XrStructureType type; void *next; XrPosef pose; XrFovf fov; } XrView;
typedef struct {
    XrStructureType type; const void *next; XrFlags64 createFlags, usageFlags; int64_t format;
    uint32_t sampleCount, width, height, faceCount, arraySize, mipCount;
} XrSwapchainCreateInfo;
typedef struct { XrStructureType type; void *next; uint32_t image; } XrSwapchainImageOpenGLKHR;
typedef struct { XrStructureType type; const void *next; XrDuration timeout; } XrSwapchainImageWaitInfo;
typedef struct { XrStructureType type; void *next; XrTime predictedDisplayTime; XrDuration predictedDisplayPeriod; XrBool32 shouldRender; } XrFrameState;
typedef struct { XrStructureType type; const void *next; XrFlags64 layerFlags; XrSpace space; } XrCompositionLayerBaseHeader;
typedef struct {
    XrStructureType type; const void *next; XrTime displayTime; int32_t environmentBlendMode;
    uint32_t layerCount; const XrCompositionLayerBaseHeader *const *layers;
} XrFrameEndInfo;
typedef struct { XrSwapchain swapchain; XrRect2Di imageRect; uint32_t imageArrayIndex; } XrSwapchainSubImage;
typedef struct { XrStructureType type; const void *next; XrPosef pose; XrFovf fov; XrSwapchainSubImage subImage; } XrCompositionLayerProjectionView;
typedef struct {
    XrStructureType type; const void *next; XrFlags64 layerFlags; XrSpace space; uint32_t viewCount;
    const XrCompositionLayerProjectionView *views;
} XrCompositionLayerProjection;
typedef struct {
    XrStructureType type; const void *next; XrFlags64 layerFlags; XrSpace space; int32_t eyeVisibility;
    XrSwapchainSubImage subImage; XrPosef pose; XrExtent2Df size;
} XrCompositionLayerQuad;
typedef struct {
    XrStructureType type; const void *next; char actionSetName[64]; char localizedActionSetName[128]; uint32_t priority;
} XrActionSetCreateInfo;
typedef struct {
    XrStructureType type; const void *next; char actionName[64]; int32_t actionType;
    uint32_t countSubactionPaths; const XrPath *subactionPaths; char localizedActionName[128];
} XrActionCreateInfo;
typedef struct { XrAction action; XrPath binding; } XrActionSuggestedBinding;
typedef struct {
    XrStructureType type; const void *next; XrPath interactionProfile; uint32_t countSuggestedBindings;
    const XrActionSuggestedBinding *suggestedBindings;
} XrInteractionProfileSuggestedBinding;
typedef struct { XrStructureType type; const void *next; uint32_t countActionSets; const XrActionSet *actionSets; } XrSessionActionSetsAttachInfo;
typedef struct { XrStructureType type; void *next; XrPath interactionProfile; } XrInteractionProfileState;
typedef struct { XrActionSet actionSet; XrPath subactionPath; } XrActiveActionSet;
typedef struct { XrStructureType type; const void *next; uint32_t countActiveActionSets; const XrActiveActionSet *activeActionSets; } XrActionsSyncInfo;
typedef struct { XrStructureType type; const void *next; XrAction action; XrPath subactionPath; } XrActionStateGetInfo;
typedef struct { XrStructureType type; void *next; XrBool32 currentState, changedSinceLastSync; XrTime lastChangeTime; XrBool32 isActive; } XrActionStateBoolean;
typedef struct { XrStructureType type; void *next; float currentState; XrBool32 changedSinceLastSync; XrTime lastChangeTime; XrBool32 isActive; } XrActionStateFloat;
typedef struct { XrStructureType type; void *next; XrVector2f currentState; XrBool32 changedSinceLastSync; XrTime lastChangeTime; XrBool32 isActive; } XrActionStateVector2f;
typedef struct { XrStructureType type; void *next; XrBool32 isActive; } XrActionStatePose;
typedef struct { XrStructureType type; const void *next; XrAction action; XrPath subactionPath; } XrHapticActionInfo;
typedef struct { XrStructureType type; const void *next; XrAction action; } XrBoundSourcesForActionEnumerateInfo;
typedef struct {
    int32_t structType; uint32_t structVersion; size_t structSize;
    uint32_t minInterfaceVersion, maxInterfaceVersion; XrVersion minApiVersion, maxApiVersion;
} XrNegotiateLoaderInfo;
typedef struct {
    int32_t structType; uint32_t structVersion; size_t structSize; uint32_t runtimeInterfaceVersion;
    XrVersion runtimeApiVersion; PFN_xrGetInstanceProcAddr getInstanceProcAddr;
} XrNegotiateRuntimeRequest;

/* ------------------------------------------------------------------ GL (resolved at run time) --- */
typedef unsigned int GLenum, GLuint;
typedef int GLint, GLsizei;
enum {
    GL_TEXTURE_2D = 0x0DE1, GL_TEXTURE_BINDING_2D = 0x8069, GL_RGBA = 0x1908, GL_UNSIGNED_BYTE = 0x1401,
    GL_PACK_ROW_LENGTH = 0x0D02, GL_PACK_SKIP_ROWS = 0x0D03, GL_PACK_SKIP_PIXELS = 0x0D04,
    GL_PACK_ALIGNMENT = 0x0D05, GL_TEXTURE_MAG_FILTER = 0x2800, GL_TEXTURE_MIN_FILTER = 0x2801,
    GL_LINEAR = 0x2601, GL_TEXTURE_MAX_LEVEL = 0x813D, GL_PIXEL_PACK_BUFFER = 0x88EB,
    GL_PIXEL_PACK_BUFFER_BINDING = 0x88ED, GL_SRGB8_ALPHA8 = 0x8C43, GL_RGBA8 = 0x8058,
};
struct gl {
    void (*GenTextures)(GLsizei, GLuint *);
    void (*DeleteTextures)(GLsizei, const GLuint *);
    void (*BindTexture)(GLenum, GLuint);
    void (*TexImage2D)(GLenum, GLint, GLint, GLsizei, GLsizei, GLint, GLenum, GLenum, const void *);
    void (*TexParameteri)(GLenum, GLenum, GLint);
    void (*GetTexImage)(GLenum, GLint, GLenum, GLenum, void *);
    void (*PixelStorei)(GLenum, GLint);
    void (*GetIntegerv)(GLenum, GLint *);
    GLenum (*GetError)(void);
    void (*Finish)(void);
    void (*BindBuffer)(GLenum, GLuint);
};

/* ------------------------------------------------------------------ runtime objects --- */
#define RUNTIME_NAME "surgplan headless test runtime"
#define SYSTEM_NAME "surgplan headless test HMD"
#define MAX_SIZE 8192u
#define MAX_LAYERS 16u
#define IMAGE_COUNT 3u
#define FRAME_PERIOD_NS 11111111LL
#define IPD_M 0.064f
#define EVENT_CAPACITY 64u
static const char *const PROFILE_TOUCH = "/interaction_profiles/oculus/touch_controller";
static const char *const PROFILE_SIMPLE = "/interaction_profiles/khr/simple_controller";
static const char *const HAND_PATHS[2] = {"/user/hand/left", "/user/hand/right"};
static const XrFovf EYE_FOV[2] = {{-0.90f, 0.75f, 0.80f, -0.85f}, {-0.75f, 0.90f, 0.80f, -0.85f}};
static const int64_t FORMATS[2] = {GL_SRGB8_ALPHA8, GL_RGBA8};

enum kind { K_INSTANCE = 1, K_SESSION, K_SPACE, K_SWAPCHAIN, K_ACTION_SET, K_ACTION };
/* Every handle starts with this header; live objects form one list so that a stale or foreign
 * handle is recognised without dereferencing it. */
struct object { int kind; struct object *parent; struct object *next_live; };

struct event { XrStructureType type; XrSession session; int32_t state; XrTime time; };
struct config {
    uint32_t view_width, view_height, capture_every;
    int additive, throttle;
    uint64_t lose_at, instance_lost_at;
    char capture_dir[2048];
};
struct XrInstance_T {
    struct object obj;
    int gl_enabled, egl_enabled, requirements_called, lost, loss_event_pending;
    char **paths; uint32_t path_count, path_capacity; /* XrPath p is paths[p - 1] */
    struct event queue[EVENT_CAPACITY]; uint32_t queue_head, queue_count;
    struct config cfg;
};
struct tracked { XrPosef pose; float squeeze, trigger; }; /* head, left hand, right hand */
struct script_entry { uint64_t frame; int target, key, line; float v[7]; };
enum { KEY_POSE, KEY_SQUEEZE, KEY_TRIGGER };
struct XrSession_T {
    struct object obj;
    XrInstance instance;
    int state, running, exit_requested, loss_pending, frame_begun;
    XrPath profile;
    struct gl gl; void *libgl;
    uint64_t waits, pending_waits, ends;
    XrTime last_predicted;
    struct tracked track[3];
    struct script_entry *script; size_t script_count, script_next;
};
struct XrSpace_T { struct object obj; XrSession session; int ref; XrAction action; XrPath subaction; XrPosef offset; };
struct XrSwapchain_T {
    struct object obj; XrSession session;
    uint32_t width, height, is_static, ever_acquired, next_image, n_acquired, n_waited;
    int64_t format; GLuint images[IMAGE_COUNT]; uint32_t acquired[IMAGE_COUNT]; int last_released;
};
struct XrActionSet_T { struct object obj; XrInstance instance; char name[64], localized[128]; uint32_t priority; int attached; XrSession session; };
struct binding { XrPath profile, path; };
struct slot { float value; int active, changed; XrTime last_change; }; /* slots: left, right, any */
struct XrAction_T {
    struct object obj; XrActionSet set; char name[64], localized[128]; int type;
    XrPath subactions[8]; uint32_t subaction_count;
    struct binding *bindings; uint32_t binding_count;
    struct slot slots[3];
};

static struct object *g_live;

/* ------------------------------------------------------------------ helpers --- */
static XrTime now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (XrTime)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void *new_object(size_t size, int kind, void *parent) {
    struct object *o = calloc(1, size);
    if (!o) return NULL;
    o->kind = kind;
    o->parent = parent;
    o->next_live = g_live;
    g_live = o;
    return o;
}

/* The live object `handle` if it is one of `kind`, else NULL. */
static void *lookup(const void *handle, int kind) {
    for (struct object *o = g_live; o; o = o->next_live)
        if ((const void *)o == handle && o->kind == kind) return o;
    return NULL;
}

static struct object *first_child(const struct object *parent) {
    for (struct object *o = g_live; o; o = o->next_live)
        if (o->parent == parent) return o;
    return NULL;
}

static void unlink_object(struct object *dead) {
    for (struct object **p = &g_live; *p; p = &(*p)->next_live)
        if (*p == dead) { *p = dead->next_live; return; }
}

/* The two-call idiom: sets *count; SIZE_INSUFFICIENT when a non-zero capacity is too small. */
static XrResult two_call(uint32_t capacity, uint32_t *count, uint32_t needed) {
    if (!count) return XR_ERROR_VALIDATION_FAILURE;
    *count = needed;
    if (capacity != 0 && capacity < needed) return XR_ERROR_SIZE_INSUFFICIENT;
    return XR_SUCCESS;
}

static const char *result_name(XrResult value) {
    static const struct { XrResult value; const char *name; } names[] = {
#define R(n) {n, #n}
        R(XR_SUCCESS), R(XR_TIMEOUT_EXPIRED), R(XR_SESSION_LOSS_PENDING), R(XR_EVENT_UNAVAILABLE),
        R(XR_SPACE_BOUNDS_UNAVAILABLE), R(XR_SESSION_NOT_FOCUSED), R(XR_FRAME_DISCARDED),
        R(XR_ERROR_VALIDATION_FAILURE), R(XR_ERROR_RUNTIME_FAILURE), R(XR_ERROR_OUT_OF_MEMORY),
        R(XR_ERROR_API_VERSION_UNSUPPORTED), R(XR_ERROR_INITIALIZATION_FAILED), R(XR_ERROR_FUNCTION_UNSUPPORTED),
        R(XR_ERROR_FEATURE_UNSUPPORTED), R(XR_ERROR_EXTENSION_NOT_PRESENT), R(XR_ERROR_LIMIT_REACHED),
        R(XR_ERROR_SIZE_INSUFFICIENT), R(XR_ERROR_HANDLE_INVALID), R(XR_ERROR_INSTANCE_LOST),
        R(XR_ERROR_SESSION_RUNNING), R(XR_ERROR_SESSION_NOT_RUNNING), R(XR_ERROR_SESSION_LOST),
        R(XR_ERROR_SYSTEM_INVALID), R(XR_ERROR_PATH_INVALID), R(XR_ERROR_PATH_COUNT_EXCEEDED),
        R(XR_ERROR_PATH_FORMAT_INVALID), R(XR_ERROR_PATH_UNSUPPORTED), R(XR_ERROR_LAYER_INVALID),
        R(XR_ERROR_LAYER_LIMIT_EXCEEDED), R(XR_ERROR_SWAPCHAIN_RECT_INVALID),
        R(XR_ERROR_SWAPCHAIN_FORMAT_UNSUPPORTED), R(XR_ERROR_ACTION_TYPE_MISMATCH),
        R(XR_ERROR_SESSION_NOT_READY), R(XR_ERROR_SESSION_NOT_STOPPING), R(XR_ERROR_TIME_INVALID),
        R(XR_ERROR_REFERENCE_SPACE_UNSUPPORTED), R(XR_ERROR_FILE_ACCESS_ERROR), R(XR_ERROR_FILE_CONTENTS_INVALID),
        R(XR_ERROR_FORM_FACTOR_UNSUPPORTED), R(XR_ERROR_FORM_FACTOR_UNAVAILABLE), R(XR_ERROR_API_LAYER_NOT_PRESENT),
        R(XR_ERROR_CALL_ORDER_INVALID), R(XR_ERROR_GRAPHICS_DEVICE_INVALID), R(XR_ERROR_POSE_INVALID),
        R(XR_ERROR_INDEX_OUT_OF_RANGE), R(XR_ERROR_VIEW_CONFIGURATION_TYPE_UNSUPPORTED),
        R(XR_ERROR_ENVIRONMENT_BLEND_MODE_UNSUPPORTED), R(XR_ERROR_NAME_DUPLICATED), R(XR_ERROR_NAME_INVALID),
        R(XR_ERROR_ACTIONSET_NOT_ATTACHED), R(XR_ERROR_ACTIONSETS_ALREADY_ATTACHED),
        R(XR_ERROR_LOCALIZED_NAME_DUPLICATED), R(XR_ERROR_LOCALIZED_NAME_INVALID),
        R(XR_ERROR_GRAPHICS_REQUIREMENTS_CALL_MISSING), R(XR_ERROR_RUNTIME_UNAVAILABLE),
#undef R
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; ++i)
        if (names[i].value == value) return names[i].name;
    return NULL;
}

/* SURGPLAN_XR_TEST_LOG: one line "xrFunction XR_RESULT" per API call (not xrGetInstanceProcAddr). */
static XrResult log_call(const char *function, XrResult result) {
    static int opened;
    static FILE *file;
    if (!opened) {
        const char *path = getenv("SURGPLAN_XR_TEST_LOG");
        opened = 1;
        if (path && *path) file = fopen(path, "a");
    }
    if (file) {
        const char *name = result_name(result);
        if (name) fprintf(file, "%s %s\n", function, name);
        else fprintf(file, "%s %d\n", function, (int)result);
        fflush(file);
    }
    return result;
}

/* Defines rt_<name> (logged, put in the dispatch table) around impl_<name> (the body). */
#define API(name, params, args)                                                             \
    static XrResult impl_##name params;                                                     \
    static XrResult rt_##name params { return log_call("xr" #name, impl_##name args); }    \
    static XrResult impl_##name params

/* ------------------------------------------------------------------ pose algebra --- */
static const XrPosef IDENTITY = {{0, 0, 0, 1}, {0, 0, 0}};

static XrQuaternionf quat_mul(XrQuaternionf a, XrQuaternionf b) {
    XrQuaternionf q = {
        a.w * b.x + a.x * b.w + a.y * b.z - a.z * b.y,
        a.w * b.y - a.x * b.z + a.y * b.w + a.z * b.x,
        a.w * b.z + a.x * b.y - a.y * b.x + a.z * b.w,
        a.w * b.w - a.x * b.x - a.y * b.y - a.z * b.z,
    };
    return q;
}

static XrVector3f rotate(XrQuaternionf q, XrVector3f v) {
    XrQuaternionf p = {v.x, v.y, v.z, 0}, c = {-q.x, -q.y, -q.z, q.w};
    XrQuaternionf r = quat_mul(quat_mul(q, p), c);
    XrVector3f out = {r.x, r.y, r.z};
    return out;
}

/* a * b: b expressed in a's frame, then a's frame in its parent. */
static XrPosef pose_mul(XrPosef a, XrPosef b) {
    XrVector3f t = rotate(a.orientation, b.position);
    XrPosef out = {quat_mul(a.orientation, b.orientation),
                   {a.position.x + t.x, a.position.y + t.y, a.position.z + t.z}};
    return out;
}

static XrPosef pose_inverse(XrPosef a) {
    XrQuaternionf c = {-a.orientation.x, -a.orientation.y, -a.orientation.z, a.orientation.w};
    XrVector3f minus = {-a.position.x, -a.position.y, -a.position.z};
    XrPosef out = {c, rotate(c, minus)};
    return out;
}

static int pose_valid(const XrPosef *p) {
    const XrQuaternionf *q = &p->orientation;
    float n = q->x * q->x + q->y * q->y + q->z * q->z + q->w * q->w;
    return isfinite(n) && fabsf(n - 1.0f) < 1e-3f && isfinite(p->position.x) &&
           isfinite(p->position.y) && isfinite(p->position.z);
}

/* Square root by Newton's method (keeps the library free of libm). */
static float root(float x) {
    float r = x > 1.0f ? x : 1.0f;
    for (int i = 0; i < 60 && x > 0; ++i) r = 0.5f * (r + x / r);
    return x > 0 ? r : 0.0f;
}

static XrPosef translation(float x, float y, float z) {
    XrPosef p = {{0, 0, 0, 1}, {x, y, z}};
    return p;
}

/* ------------------------------------------------------------------ paths --- */
static int path_char_ok(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '/';
}

/* Well-formed per the spec: absolute, no empty, "." or ".." component, no trailing slash. */
static int path_well_formed(const char *s) {
    size_t n = strnlen(s, 256);
    if (n == 0 || n >= 256 || s[0] != '/' || s[n - 1] == '/') return 0;
    for (size_t i = 0; i < n; ++i) {
        if (!path_char_ok(s[i]) || (s[i] == '/' && s[i + 1] == '/')) return 0;
        if (s[i] == '/' && s[i + 1] == '.' && (s[i + 2] == '/' || s[i + 2] == 0 ||
                                              (s[i + 2] == '.' && (s[i + 3] == '/' || s[i + 3] == 0))))
            return 0;
    }
    return 1;
}

static XrPath intern(XrInstance inst, const char *s) {
    for (uint32_t i = 0; i < inst->path_count; ++i)
        if (strcmp(inst->paths[i], s) == 0) return i + 1;
    if (inst->path_count == inst->path_capacity) {
        uint32_t capacity = inst->path_capacity ? 2 * inst->path_capacity : 64;
        char **grown = realloc(inst->paths, capacity * sizeof *grown);
        if (!grown) return XR_NULL_PATH;
        inst->paths = grown;
        inst->path_capacity = capacity;
    }
    char *copy = strdup(s);
    if (!copy) return XR_NULL_PATH;
    inst->paths[inst->path_count++] = copy;
    return inst->path_count;
}

static const char *path_string(XrInstance inst, XrPath path) {
    return path >= 1 && path <= inst->path_count ? inst->paths[path - 1] : NULL;
}

/* 0 left, 1 right, -1 other. */
static int hand_of(XrInstance inst, XrPath path) {
    const char *s = path_string(inst, path);
    for (int h = 0; s && h < 2; ++h)
        if (strcmp(s, HAND_PATHS[h]) == 0) return h;
    return -1;
}

/* ------------------------------------------------------------------ events --- */
static void push_event(XrInstance inst, XrStructureType type, XrSession session, int32_t state) {
    if (inst->queue_count == EVENT_CAPACITY) return;
    struct event *e = &inst->queue[(inst->queue_head + inst->queue_count++) % EVENT_CAPACITY];
    e->type = type;
    e->session = session;
    e->state = state;
    e->time = now_ns();
}

static void set_state(struct XrSession_T *s, int state) {
    s->state = state;
    push_event(s->instance, XR_TYPE_EVENT_DATA_SESSION_STATE_CHANGED, s, state);
}

/* Drops queued events that name `session` (it is being destroyed). */
static void drop_events(XrInstance inst, XrSession session) {
    struct event kept[EVENT_CAPACITY];
    uint32_t n = 0;
    for (uint32_t i = 0; i < inst->queue_count; ++i) {
        struct event *e = &inst->queue[(inst->queue_head + i) % EVENT_CAPACITY];
        if (e->session != session) kept[n++] = *e;
    }
    memcpy(inst->queue, kept, n * sizeof kept[0]);
    inst->queue_head = 0;
    inst->queue_count = n;
}

/* ------------------------------------------------------------------ configuration --- */
static int parse_count(const char *name, uint64_t *out) {
    const char *v = getenv(name);
    char *end;
    *out = 0;
    if (!v || !*v) return 1;
    unsigned long long n = strtoull(v, &end, 10);
    if (*end || n == 0 || v[0] == '-') {
        fprintf(stderr, "surgplan test runtime: %s=%s is not a positive integer\n", name, v);
        return 0;
    }
    *out = n;
    return 1;
}

/* Reads the SURGPLAN_XR_TEST_* controls; prints one line and returns 0 on a bad value. */
static int read_config(struct config *c) {
    const char *size = getenv("SURGPLAN_XR_TEST_VIEW_SIZE"), *blend = getenv("SURGPLAN_XR_TEST_BLEND");
    const char *throttle = getenv("SURGPLAN_XR_TEST_THROTTLE"), *dir = getenv("SURGPLAN_XR_TEST_CAPTURE_DIR");
    uint64_t every;
    c->view_width = 2064;
    c->view_height = 2208;
    if (size && *size) {
        unsigned w, h;
        char extra;
        if (sscanf(size, "%ux%u%c", &w, &h, &extra) != 2 || w < 1 || h < 1 || w > MAX_SIZE / 2 || h > MAX_SIZE / 2) {
            fprintf(stderr, "surgplan test runtime: SURGPLAN_XR_TEST_VIEW_SIZE=%s is not WxH (1..%u)\n", size, MAX_SIZE / 2);
            return 0;
        }
        c->view_width = w;
        c->view_height = h;
    }
    if (blend && *blend && strcmp(blend, "additive") != 0 && strcmp(blend, "opaque") != 0) {
        fprintf(stderr, "surgplan test runtime: SURGPLAN_XR_TEST_BLEND=%s is not additive or opaque\n", blend);
        return 0;
    }
    c->additive = blend && strcmp(blend, "additive") == 0;
    c->throttle = throttle && strcmp(throttle, "1") == 0;
    snprintf(c->capture_dir, sizeof c->capture_dir, "%s", dir ? dir : "");
    if (!parse_count("SURGPLAN_XR_TEST_CAPTURE_EVERY", &every) || !parse_count("SURGPLAN_XR_TEST_LOSE_AT_FRAME", &c->lose_at) ||
        !parse_count("SURGPLAN_XR_TEST_INSTANCE_LOST_AT_FRAME", &c->instance_lost_at))
        return 0;
    c->capture_every = every ? (uint32_t)every : 1;
    return 1;
}

/* ------------------------------------------------------------------ instance --- */
static const char *const EXTENSIONS[2] = {"XR_KHR_opengl_enable", "XR_MNDX_egl_enable"};
static const uint32_t EXTENSION_VERSIONS[2] = {10, 1};

static XrInstance get_instance(XrInstance handle) { return lookup(handle, K_INSTANCE); }

/* XR_SUCCESS and the instance, or HANDLE_INVALID / INSTANCE_LOST. */
static XrResult check_instance(XrInstance handle, XrInstance *out) {
    *out = get_instance(handle);
    if (!*out) return XR_ERROR_HANDLE_INVALID;
    return (*out)->lost ? XR_ERROR_INSTANCE_LOST : XR_SUCCESS;
}

static XrResult check_system(XrInstance handle, XrSystemId system, XrInstance *out) {
    XrResult r = check_instance(handle, out);
    if (r) return r;
    return system == 1 ? XR_SUCCESS : XR_ERROR_SYSTEM_INVALID;
}

API(EnumerateInstanceExtensionProperties,
    (const char *layer, uint32_t capacity, uint32_t *count, XrExtensionProperties *properties),
    (layer, capacity, count, properties)) {
    if (layer) return XR_ERROR_API_LAYER_NOT_PRESENT;
    XrResult r = two_call(capacity, count, 2);
    if (r || capacity == 0) return r;
    for (uint32_t i = 0; i < 2; ++i) {
        if (properties[i].type != XR_TYPE_EXTENSION_PROPERTIES) return XR_ERROR_VALIDATION_FAILURE;
        snprintf(properties[i].extensionName, 128, "%s", EXTENSIONS[i]);
        properties[i].extensionVersion = EXTENSION_VERSIONS[i];
    }
    return XR_SUCCESS;
}

API(CreateInstance, (const XrInstanceCreateInfo *info, XrInstance *instance), (info, instance)) {
    struct config cfg;
    int enabled[2] = {0, 0};
    if (!info || !instance || info->type != XR_TYPE_INSTANCE_CREATE_INFO) return XR_ERROR_VALIDATION_FAILURE;
    if (XR_VERSION_MAJOR(info->applicationInfo.apiVersion) != 1) return XR_ERROR_API_VERSION_UNSUPPORTED;
    for (uint32_t i = 0; i < info->enabledExtensionCount; ++i) {
        int known = 0;
        for (int e = 0; e < 2; ++e)
            if (strcmp(info->enabledExtensionNames[i], EXTENSIONS[e]) == 0) known = enabled[e] = 1;
        if (!known) return XR_ERROR_EXTENSION_NOT_PRESENT;
    }
    memset(&cfg, 0, sizeof cfg);
    if (!read_config(&cfg)) return XR_ERROR_INITIALIZATION_FAILED;
    struct XrInstance_T *created = new_object(sizeof *created, K_INSTANCE, NULL);
    if (!created) return XR_ERROR_OUT_OF_MEMORY;
    created->gl_enabled = enabled[0];
    created->egl_enabled = enabled[1];
    created->cfg = cfg;
    *instance = created;
    return XR_SUCCESS;
}

static void destroy_object(struct object *o);

API(DestroyInstance, (XrInstance instance), (instance)) {
    XrInstance inst = get_instance(instance);
    if (!inst) return XR_ERROR_HANDLE_INVALID;
    destroy_object(&inst->obj);
    return XR_SUCCESS;
}

API(GetInstanceProperties, (XrInstance instance, XrInstanceProperties *properties), (instance, properties)) {
    XrInstance inst;
    XrResult r = check_instance(instance, &inst);
    if (r) return r;
    if (!properties || properties->type != XR_TYPE_INSTANCE_PROPERTIES) return XR_ERROR_VALIDATION_FAILURE;
    properties->runtimeVersion = XR_MAKE_VERSION(0, 2, 0);
    snprintf(properties->runtimeName, 128, "%s", RUNTIME_NAME);
    return XR_SUCCESS;
}

API(GetSystem, (XrInstance instance, const XrSystemGetInfo *info, XrSystemId *system), (instance, info, system)) {
    XrInstance inst;
    XrResult r = check_instance(instance, &inst);
    if (r) return r;
    if (!info || !system || info->type != XR_TYPE_SYSTEM_GET_INFO) return XR_ERROR_VALIDATION_FAILURE;
    if (info->formFactor != 1 && info->formFactor != 2) return XR_ERROR_VALIDATION_FAILURE;
    if (info->formFactor == 2) return XR_ERROR_FORM_FACTOR_UNSUPPORTED; /* handheld */
    const char *no_hmd = getenv("SURGPLAN_XR_TEST_NO_HMD");
    if (no_hmd && strcmp(no_hmd, "1") == 0) return XR_ERROR_FORM_FACTOR_UNAVAILABLE;
    *system = 1;
    return XR_SUCCESS;
}

API(GetSystemProperties, (XrInstance instance, XrSystemId system, XrSystemProperties *p), (instance, system, p)) {
    XrInstance inst;
    XrResult r = check_system(instance, system, &inst);
    if (r) return r;
    if (!p || p->type != XR_TYPE_SYSTEM_PROPERTIES) return XR_ERROR_VALIDATION_FAILURE;
    p->systemId = system;
    p->vendorId = 0;
    snprintf(p->systemName, sizeof p->systemName, "%s", SYSTEM_NAME);
    p->graphicsProperties.maxSwapchainImageWidth = MAX_SIZE;
    p->graphicsProperties.maxSwapchainImageHeight = MAX_SIZE;
    p->graphicsProperties.maxLayerCount = MAX_LAYERS;
    p->trackingProperties.orientationTracking = 1;
    p->trackingProperties.positionTracking = 1;
    return XR_SUCCESS;
}

API(EnumerateViewConfigurations, (XrInstance instance, XrSystemId system, uint32_t capacity, uint32_t *count, int32_t *types),
    (instance, system, capacity, count, types)) {
    XrInstance inst;
    XrResult r = check_system(instance, system, &inst);
    if (r || (r = two_call(capacity, count, 1)) || capacity == 0) return r;
    types[0] = STEREO;
    return XR_SUCCESS;
}

API(GetViewConfigurationProperties, (XrInstance instance, XrSystemId system, int32_t type, XrViewConfigurationProperties *p),
    (instance, system, type, p)) {
    XrInstance inst;
    XrResult r = check_system(instance, system, &inst);
    if (r) return r;
    if (!p || p->type != XR_TYPE_VIEW_CONFIGURATION_PROPERTIES) return XR_ERROR_VALIDATION_FAILURE;
    if (type != STEREO) return XR_ERROR_VIEW_CONFIGURATION_TYPE_UNSUPPORTED;
    p->viewConfigurationType = STEREO;
    p->fovMutable = 1;
    return XR_SUCCESS;
}

API(EnumerateViewConfigurationViews,
    (XrInstance instance, XrSystemId system, int32_t type, uint32_t capacity, uint32_t *count, XrViewConfigurationView *views),
    (instance, system, type, capacity, count, views)) {
    XrInstance inst;
    XrResult r = check_system(instance, system, &inst);
    if (r) return r;
    if (type != STEREO) return XR_ERROR_VIEW_CONFIGURATION_TYPE_UNSUPPORTED;
    if ((r = two_call(capacity, count, 2)) || capacity == 0) return r;
    for (int i = 0; i < 2; ++i) {
        if (views[i].type != XR_TYPE_VIEW_CONFIGURATION_VIEW) return XR_ERROR_VALIDATION_FAILURE;
        views[i].recommendedImageRectWidth = inst->cfg.view_width;
        views[i].recommendedImageRectHeight = inst->cfg.view_height;
        views[i].maxImageRectWidth = 2 * inst->cfg.view_width;
        views[i].maxImageRectHeight = 2 * inst->cfg.view_height;
        views[i].recommendedSwapchainSampleCount = 1;
        views[i].maxSwapchainSampleCount = 1;
    }
    return XR_SUCCESS;
}

API(EnumerateEnvironmentBlendModes,
    (XrInstance instance, XrSystemId system, int32_t type, uint32_t capacity, uint32_t *count, int32_t *modes),
    (instance, system, type, capacity, count, modes)) {
    XrInstance inst;
    XrResult r = check_system(instance, system, &inst);
    if (r) return r;
    if (type != STEREO) return XR_ERROR_VIEW_CONFIGURATION_TYPE_UNSUPPORTED;
    uint32_t n = inst->cfg.additive ? 2 : 1;
    if ((r = two_call(capacity, count, n)) || capacity == 0) return r;
    if (inst->cfg.additive) modes[0] = BLEND_ADDITIVE;
    modes[n - 1] = BLEND_OPAQUE;
    return XR_SUCCESS;
}

static int blend_offered(XrInstance inst, int32_t mode) {
    return mode == BLEND_OPAQUE || (mode == BLEND_ADDITIVE && inst->cfg.additive);
}

API(StringToPath, (XrInstance instance, const char *string, XrPath *path), (instance, string, path)) {
    XrInstance inst;
    XrResult r = check_instance(instance, &inst);
    if (r) return r;
    if (!string || !path) return XR_ERROR_VALIDATION_FAILURE;
    if (!path_well_formed(string)) return XR_ERROR_PATH_FORMAT_INVALID;
    *path = intern(inst, string);
    return *path ? XR_SUCCESS : XR_ERROR_PATH_COUNT_EXCEEDED;
}

API(PathToString, (XrInstance instance, XrPath path, uint32_t capacity, uint32_t *count, char *buffer),
    (instance, path, capacity, count, buffer)) {
    XrInstance inst;
    XrResult r = check_instance(instance, &inst);
    if (r) return r;
    const char *s = path_string(inst, path);
    if (!s) return XR_ERROR_PATH_INVALID;
    if ((r = two_call(capacity, count, (uint32_t)strlen(s) + 1)) || capacity == 0) return r;
    memcpy(buffer, s, strlen(s) + 1);
    return XR_SUCCESS;
}

/* Copies the oldest queued event into the application's buffer. */
API(PollEvent, (XrInstance instance, XrEventDataBuffer *buffer), (instance, buffer)) {
    XrInstance inst = get_instance(instance);
    if (!inst) return XR_ERROR_HANDLE_INVALID;
    if (!buffer || buffer->type != XR_TYPE_EVENT_DATA_BUFFER) return XR_ERROR_VALIDATION_FAILURE;
    if (inst->lost && !inst->loss_event_pending) return XR_ERROR_INSTANCE_LOST;
    if (inst->lost) {
        XrEventDataInstanceLossPending *e = (void *)buffer;
        inst->loss_event_pending = 0;
        memset(buffer, 0, sizeof *buffer);
        e->type = XR_TYPE_EVENT_DATA_INSTANCE_LOSS_PENDING;
        e->lossTime = now_ns();
        return XR_SUCCESS;
    }
    if (inst->queue_count == 0) return XR_EVENT_UNAVAILABLE;
    struct event ev = inst->queue[inst->queue_head];
    inst->queue_head = (inst->queue_head + 1) % EVENT_CAPACITY;
    inst->queue_count--;
    memset(buffer, 0, sizeof *buffer);
    if (ev.type == XR_TYPE_EVENT_DATA_SESSION_STATE_CHANGED) {
        XrEventDataSessionStateChanged *e = (void *)buffer;
        e->session = ev.session;
        e->state = ev.state;
        e->time = ev.time;
    } else {
        ((XrEventDataInteractionProfileChanged *)(void *)buffer)->session = ev.session;
    }
    buffer->type = ev.type;
    return XR_SUCCESS;
}

API(GetOpenGLGraphicsRequirementsKHR, (XrInstance instance, XrSystemId system, XrGraphicsRequirementsOpenGLKHR *req),
    (instance, system, req)) {
    XrInstance inst;
    XrResult r = check_system(instance, system, &inst);
    if (r) return r;
    if (!req || req->type != XR_TYPE_GRAPHICS_REQUIREMENTS_OPENGL_KHR) return XR_ERROR_VALIDATION_FAILURE;
    req->minApiVersionSupported = XR_MAKE_VERSION(3, 3, 0);
    req->maxApiVersionSupported = XR_MAKE_VERSION(4, 6, 0);
    inst->requirements_called = 1;
    return XR_SUCCESS;
}

API(ResultToString, (XrInstance instance, XrResult value, char buffer[64]), (instance, value, buffer)) {
    XrInstance inst;
    XrResult r = check_instance(instance, &inst);
    if (r) return r;
    const char *name = result_name(value);
    if (name) snprintf(buffer, 64, "%s", name);
    else snprintf(buffer, 64, value >= 0 ? "XR_UNKNOWN_SUCCESS_%d" : "XR_UNKNOWN_FAILURE_%d", (int)(value >= 0 ? value : -value));
    return XR_SUCCESS;
}

API(StructureTypeToString, (XrInstance instance, XrStructureType value, char buffer[64]), (instance, value, buffer)) {
    XrInstance inst;
    XrResult r = check_instance(instance, &inst);
    if (r) return r;
    snprintf(buffer, 64, "XR_UNKNOWN_STRUCTURE_TYPE_%d", (int)value);
    return XR_SUCCESS;
}

/* ------------------------------------------------------------------ sessions --- */
static XrResult check_session(XrSession handle, struct XrSession_T **out) {
    *out = lookup(handle, K_SESSION);
    if (!*out) return XR_ERROR_HANDLE_INVALID;
    return (*out)->instance->lost ? XR_ERROR_INSTANCE_LOST : XR_SUCCESS;
}

/* A success code becomes XR_SESSION_LOSS_PENDING once the session is being lost. */
static XrResult loss_filter(const struct XrSession_T *s, XrResult r) {
    return r >= 0 && s->loss_pending ? XR_SESSION_LOSS_PENDING : r;
}

static void default_tracking(struct XrSession_T *s) {
    s->track[0].pose = IDENTITY;
    s->track[1].pose = translation(-0.2f, -0.3f, -0.4f);
    s->track[2].pose = translation(0.2f, -0.3f, -0.4f);
}

/* Parses one script line into `e`; returns 0 if malformed, -1 if blank or a comment. */
static int parse_script_line(char *text, struct script_entry *e) {
    char *hash = strchr(text, '#'), *save = NULL, *tok[10];
    int n = 0;
    if (hash) *hash = 0;
    for (char *t = strtok_r(text, " \t\r\n", &save); t; t = strtok_r(NULL, " \t\r\n", &save))
        if (n < 10) tok[n++] = t; else return 0;
    if (n == 0) return -1;
    if (n < 4) return 0;
    char *end;
    e->frame = strtoull(tok[0], &end, 10);
    if (*end || tok[0][0] == '-') return 0;
    static const char *const targets[3] = {"head", "left", "right"};
    e->target = -1;
    for (int i = 0; i < 3; ++i) if (strcmp(tok[1], targets[i]) == 0) e->target = i;
    if (e->target < 0) return 0;
    if (strcmp(tok[2], "pose") == 0) e->key = KEY_POSE;
    else if (strcmp(tok[2], "squeeze") == 0 && e->target) e->key = KEY_SQUEEZE;
    else if (strcmp(tok[2], "trigger") == 0 && e->target) e->key = KEY_TRIGGER;
    else return 0;
    int want = e->key == KEY_POSE ? 7 : 1;
    if (n != 3 + want) return 0;
    for (int i = 0; i < want; ++i) {
        e->v[i] = strtof(tok[3 + i], &end);
        if (*end || !isfinite(e->v[i])) return 0;
    }
    if (e->key == KEY_POSE) {
        float norm = root(e->v[3] * e->v[3] + e->v[4] * e->v[4] + e->v[5] * e->v[5] + e->v[6] * e->v[6]);
        if (norm < 1e-6f) return 0;
        for (int i = 3; i < 7; ++i) e->v[i] /= norm;
    }
    return 1;
}

static int entry_order(const void *a, const void *b) {
    const struct script_entry *x = a, *y = b;
    if (x->frame != y->frame) return x->frame < y->frame ? -1 : 1;
    return x->line - y->line;
}

/* SURGPLAN_XR_TEST_SCRIPT: reads the scripted tracking; prints one line and returns 0 on error. */
static int load_script(struct XrSession_T *s) {
    const char *path = getenv("SURGPLAN_XR_TEST_SCRIPT");
    if (!path || !*path) return 1;
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "surgplan test runtime: cannot read script %s\n", path);
        return 0;
    }
    char line[1024], copy[1024];
    size_t capacity = 0;
    for (int number = 1; fgets(line, sizeof line, f); ++number) {
        struct script_entry e;
        memcpy(copy, line, sizeof line);
        copy[strcspn(copy, "\r\n")] = 0;
        int ok = parse_script_line(line, &e);
        if (ok < 0) continue;
        if (ok == 0) {
            fprintf(stderr, "surgplan test runtime: %s:%d: malformed script line \"%s\" "
                    "(expected FRAME head|left|right pose X Y Z QX QY QZ QW | squeeze V | trigger V)\n",
                    path, number, copy);
            fclose(f);
            return 0;
        }
        e.line = number;
        if (s->script_count == capacity) {
            capacity = capacity ? 2 * capacity : 16;
            struct script_entry *grown = realloc(s->script, capacity * sizeof *grown);
            if (!grown) { fclose(f); return 0; }
            s->script = grown;
        }
        s->script[s->script_count++] = e;
    }
    fclose(f);
    qsort(s->script, s->script_count, sizeof *s->script, entry_order);
    return 1;
}

/* Applies the script entries that take effect at xrWaitFrame number `frame`. */
static void apply_script(struct XrSession_T *s, uint64_t frame) {
    while (s->script_next < s->script_count && s->script[s->script_next].frame <= frame) {
        const struct script_entry *e = &s->script[s->script_next++];
        struct tracked *t = &s->track[e->target];
        if (e->key == KEY_POSE) {
            XrPosef p = {{e->v[3], e->v[4], e->v[5], e->v[6]}, {e->v[0], e->v[1], e->v[2]}};
            t->pose = p;
        } else if (e->key == KEY_SQUEEZE) {
            t->squeeze = e->v[0];
        } else {
            t->trigger = e->v[0];
        }
    }
}

/* Resolves the GL functions through the binding (EGL getProcAddress, else GLX). */
static int resolve_gl(struct XrSession_T *s, PFN_xrEglGetProcAddressMNDX egl) {
    PFN_xrVoidFunction (*glx)(const unsigned char *) = NULL;
    if (!egl) {
        glx = (PFN_xrVoidFunction(*)(const unsigned char *))dlsym(RTLD_DEFAULT, "glXGetProcAddressARB");
        if (!glx && (s->libgl = dlopen("libGL.so.1", RTLD_LAZY | RTLD_LOCAL)))
            glx = (PFN_xrVoidFunction(*)(const unsigned char *))dlsym(s->libgl, "glXGetProcAddressARB");
        if (!glx) {
            fprintf(stderr, "surgplan test runtime: glXGetProcAddressARB not found (libGL.so.1)\n");
            return 0;
        }
    }
#define GET(field, name)                                                                            \
    do {                                                                                            \
        PFN_xrVoidFunction f = egl ? egl(name) : glx((const unsigned char *)name);                  \
        if (!f) { fprintf(stderr, "surgplan test runtime: OpenGL function %s not found\n", name); return 0; } \
        memcpy(&s->gl.field, &f, sizeof f);                                                         \
    } while (0)
    GET(GenTextures, "glGenTextures"); GET(DeleteTextures, "glDeleteTextures");
    GET(BindTexture, "glBindTexture"); GET(TexImage2D, "glTexImage2D");
    GET(TexParameteri, "glTexParameteri"); GET(GetTexImage, "glGetTexImage");
    GET(PixelStorei, "glPixelStorei"); GET(GetIntegerv, "glGetIntegerv");
    GET(GetError, "glGetError"); GET(Finish, "glFinish"); GET(BindBuffer, "glBindBuffer");
#undef GET
    return 1;
}

/* The graphics binding in the create info's next chain (type 0 if none usable). */
static const XrBaseInStructure *find_binding(XrInstance inst, const void *next) {
    for (const XrBaseInStructure *b = next; b; b = b->next) {
        if (b->type == XR_TYPE_GRAPHICS_BINDING_EGL_MNDX && inst->egl_enabled) return b;
        if (b->type == XR_TYPE_GRAPHICS_BINDING_OPENGL_XLIB_KHR && inst->gl_enabled) return b;
    }
    return NULL;
}

API(CreateSession, (XrInstance instance, const XrSessionCreateInfo *info, XrSession *session), (instance, info, session)) {
    XrInstance inst;
    XrResult r = check_instance(instance, &inst);
    if (r) return r;
    if (!info || !session || info->type != XR_TYPE_SESSION_CREATE_INFO) return XR_ERROR_VALIDATION_FAILURE;
    if (info->systemId != 1) return XR_ERROR_SYSTEM_INVALID;
    if (!inst->requirements_called) return XR_ERROR_GRAPHICS_REQUIREMENTS_CALL_MISSING;
    const XrBaseInStructure *binding = find_binding(inst, info->next);
    PFN_xrEglGetProcAddressMNDX egl = NULL;
    if (!binding) return XR_ERROR_GRAPHICS_DEVICE_INVALID;
    if (binding->type == XR_TYPE_GRAPHICS_BINDING_EGL_MNDX) {
        const XrGraphicsBindingEGLMNDX *b = (const void *)binding;
        if (!b->getProcAddress || !b->display || !b->context) return XR_ERROR_GRAPHICS_DEVICE_INVALID;
        egl = b->getProcAddress;
    } else if (!((const XrGraphicsBindingOpenGLXlibKHR *)(const void *)binding)->glxContext) {
        return XR_ERROR_GRAPHICS_DEVICE_INVALID;
    }
    for (struct object *o = g_live; o; o = o->next_live)
        if (o->kind == K_SESSION && o->parent == &inst->obj) return XR_ERROR_LIMIT_REACHED;
    struct XrSession_T *s = new_object(sizeof *s, K_SESSION, inst);
    if (!s) return XR_ERROR_OUT_OF_MEMORY;
    s->instance = inst;
    default_tracking(s);
    if (!load_script(s)) { destroy_object(&s->obj); return XR_ERROR_RUNTIME_FAILURE; }
    if (!resolve_gl(s, egl)) { destroy_object(&s->obj); return XR_ERROR_GRAPHICS_DEVICE_INVALID; }
    set_state(s, ST_IDLE);
    set_state(s, ST_READY);
    *session = s;
    return XR_SUCCESS;
}

API(DestroySession, (XrSession session), (session)) {
    struct XrSession_T *s = lookup(session, K_SESSION);
    if (!s) return XR_ERROR_HANDLE_INVALID;
    destroy_object(&s->obj);
    return XR_SUCCESS;
}

API(BeginSession, (XrSession session, const XrSessionBeginInfo *info), (session, info)) {
    struct XrSession_T *s;
    XrResult r = check_session(session, &s);
    if (r) return r;
    if (!info || info->type != XR_TYPE_SESSION_BEGIN_INFO) return XR_ERROR_VALIDATION_FAILURE;
    if (s->loss_pending) return XR_ERROR_SESSION_LOST;
    if (info->primaryViewConfigurationType != STEREO) return XR_ERROR_VIEW_CONFIGURATION_TYPE_UNSUPPORTED;
    if (s->running) return XR_ERROR_SESSION_RUNNING;
    if (s->state != ST_READY) return XR_ERROR_SESSION_NOT_READY;
    s->running = 1;
    set_state(s, ST_SYNCHRONIZED);
    return XR_SUCCESS;
}

API(EndSession, (XrSession session), (session)) {
    struct XrSession_T *s;
    XrResult r = check_session(session, &s);
    if (r) return r;
    if (s->loss_pending) return XR_ERROR_SESSION_LOST;
    if (!s->running) return XR_ERROR_SESSION_NOT_RUNNING;
    if (s->state != ST_STOPPING) return XR_ERROR_SESSION_NOT_STOPPING;
    s->running = 0;
    s->frame_begun = 0;
    s->pending_waits = 0;
    set_state(s, ST_IDLE);
    set_state(s, ST_EXITING);
    return XR_SUCCESS;
}

/* Steps down from the current state to STOPPING, one legal transition at a time. */
API(RequestExitSession, (XrSession session), (session)) {
    struct XrSession_T *s;
    XrResult r = check_session(session, &s);
    if (r) return r;
    if (s->loss_pending) return XR_ERROR_SESSION_LOST;
    if (!s->running) return XR_ERROR_SESSION_NOT_RUNNING;
    s->exit_requested = 1;
    if (s->state == ST_FOCUSED) set_state(s, ST_VISIBLE);
    if (s->state == ST_VISIBLE) set_state(s, ST_SYNCHRONIZED);
    if (s->state == ST_SYNCHRONIZED) set_state(s, ST_STOPPING);
    return XR_SUCCESS;
}

/* ------------------------------------------------------------------ spaces --- */
static XrResult check_space(XrSpace handle, struct XrSpace_T **out) {
    *out = lookup(handle, K_SPACE);
    if (!*out) return XR_ERROR_HANDLE_INVALID;
    return ((struct XrSession_T *)(*out)->session)->instance->lost ? XR_ERROR_INSTANCE_LOST : XR_SUCCESS;
}

API(EnumerateReferenceSpaces, (XrSession session, uint32_t capacity, uint32_t *count, int32_t *types),
    (session, capacity, count, types)) {
    struct XrSession_T *s;
    XrResult r = check_session(session, &s);
    if (r || (r = two_call(capacity, count, 3)) || capacity == 0) return r;
    types[0] = REF_VIEW;
    types[1] = REF_LOCAL;
    types[2] = REF_STAGE;
    return XR_SUCCESS;
}

API(CreateReferenceSpace, (XrSession session, const XrReferenceSpaceCreateInfo *info, XrSpace *space), (session, info, space)) {
    struct XrSession_T *s;
    XrResult r = check_session(session, &s);
    if (r) return r;
    if (!info || !space || info->type != XR_TYPE_REFERENCE_SPACE_CREATE_INFO) return XR_ERROR_VALIDATION_FAILURE;
    if (info->referenceSpaceType < REF_VIEW || info->referenceSpaceType > REF_STAGE) return XR_ERROR_REFERENCE_SPACE_UNSUPPORTED;
    if (!pose_valid(&info->poseInReferenceSpace)) return XR_ERROR_POSE_INVALID;
    struct XrSpace_T *sp = new_object(sizeof *sp, K_SPACE, s);
    if (!sp) return XR_ERROR_OUT_OF_MEMORY;
    sp->session = s;
    sp->ref = info->referenceSpaceType;
    sp->offset = info->poseInReferenceSpace;
    *space = sp;
    return XR_SUCCESS;
}

API(GetReferenceSpaceBoundsRect, (XrSession session, int32_t type, XrExtent2Df *bounds), (session, type, bounds)) {
    struct XrSession_T *s;
    XrResult r = check_session(session, &s);
    if (r) return r;
    if (!bounds) return XR_ERROR_VALIDATION_FAILURE;
    if (type < REF_VIEW || type > REF_STAGE) return XR_ERROR_REFERENCE_SPACE_UNSUPPORTED;
    bounds->width = bounds->height = type == REF_STAGE ? 3.0f : 0.0f;
    return type == REF_STAGE ? XR_SUCCESS : XR_SPACE_BOUNDS_UNAVAILABLE;
}

static int action_attached(const struct XrAction_T *a, const struct XrSession_T *s) {
    const struct XrActionSet_T *set = a->set;
    return set->attached && set->session == s;
}

API(CreateActionSpace, (XrSession session, const XrActionSpaceCreateInfo *info, XrSpace *space), (session, info, space)) {
    struct XrSession_T *s;
    XrResult r = check_session(session, &s);
    if (r) return r;
    if (!info || !space || info->type != XR_TYPE_ACTION_SPACE_CREATE_INFO) return XR_ERROR_VALIDATION_FAILURE;
    struct XrAction_T *a = lookup(info->action, K_ACTION);
    if (!a || ((struct XrActionSet_T *)a->set)->instance != s->instance) return XR_ERROR_HANDLE_INVALID;
    if (a->type != ACT_POSE) return XR_ERROR_ACTION_TYPE_MISMATCH;
    if (info->subactionPath != XR_NULL_PATH) {
        int declared = 0;
        if (!path_string(s->instance, info->subactionPath)) return XR_ERROR_PATH_INVALID;
        for (uint32_t i = 0; i < a->subaction_count; ++i) declared |= a->subactions[i] == info->subactionPath;
        if (!declared) return XR_ERROR_PATH_UNSUPPORTED;
    }
    if (!pose_valid(&info->poseInActionSpace)) return XR_ERROR_POSE_INVALID;
    struct XrSpace_T *sp = new_object(sizeof *sp, K_SPACE, s);
    if (!sp) return XR_ERROR_OUT_OF_MEMORY;
    sp->session = s;
    sp->action = a;
    sp->subaction = info->subactionPath;
    sp->offset = info->poseInActionSpace;
    *space = sp;
    return XR_SUCCESS;
}

API(DestroySpace, (XrSpace space), (space)) {
    struct XrSpace_T *sp = lookup(space, K_SPACE);
    if (!sp) return XR_ERROR_HANDLE_INVALID;
    destroy_object(&sp->obj);
    return XR_SUCCESS;
}

static int has_pose_binding(const struct XrSession_T *s, const struct XrAction_T *a, int hand);

/* The space's pose in LOCAL; 0 when it cannot be located (an inactive action space). */
static int space_in_local(const struct XrSpace_T *sp, XrPosef *out) {
    const struct XrSession_T *s = sp->session;
    if (sp->ref == REF_LOCAL) *out = sp->offset;
    else if (sp->ref == REF_STAGE) *out = pose_mul(translation(0, -1.6f, 0), sp->offset);
    else if (sp->ref == REF_VIEW) *out = pose_mul(s->track[0].pose, sp->offset);
    else {
        const struct XrAction_T *a = lookup(sp->action, K_ACTION);
        int hand = a ? hand_of(s->instance, sp->subaction) : -1;
        if (a && sp->subaction == XR_NULL_PATH) hand = has_pose_binding(s, a, 0) ? 0 : 1;
        if (hand < 0 || !a->slots[hand].active) return 0;
        *out = pose_mul(s->track[1 + hand].pose, sp->offset);
    }
    return 1;
}

API(LocateSpace, (XrSpace space, XrSpace base, XrTime time, XrSpaceLocation *location), (space, base, time, location)) {
    struct XrSpace_T *sp, *bp;
    XrResult r = check_space(space, &sp);
    if (r || (r = check_space(base, &bp))) return r;
    if (!location || location->type != XR_TYPE_SPACE_LOCATION) return XR_ERROR_VALIDATION_FAILURE;
    if (sp->session != bp->session) return XR_ERROR_VALIDATION_FAILURE;
    if (time <= 0) return XR_ERROR_TIME_INVALID;
    XrPosef a, b;
    if (space_in_local(sp, &a) && space_in_local(bp, &b)) {
        location->pose = pose_mul(pose_inverse(b), a);
        location->locationFlags = LOCATION_ALL;
    } else {
        location->pose = IDENTITY;
        location->locationFlags = 0;
    }
    for (XrSpaceVelocity *v = location->next; v; v = v->next)
        if (v->type == XR_TYPE_SPACE_VELOCITY) {
            v->velocityFlags = 0;
            memset(&v->linearVelocity, 0, sizeof v->linearVelocity);
            memset(&v->angularVelocity, 0, sizeof v->angularVelocity);
        }
    return loss_filter(sp->session, XR_SUCCESS);
}

/* Eye poses in `space`: head x translation(-+ipd/2, 0, 0), left eye first. */
API(LocateViews,
    (XrSession session, const XrViewLocateInfo *info, XrViewState *state, uint32_t capacity, uint32_t *count, XrView *views),
    (session, info, state, capacity, count, views)) {
    struct XrSession_T *s;
    struct XrSpace_T *sp;
    XrResult r = check_session(session, &s);
    if (r) return r;
    if (!info || !state || info->type != XR_TYPE_VIEW_LOCATE_INFO || state->type != XR_TYPE_VIEW_STATE)
        return XR_ERROR_VALIDATION_FAILURE;
    if ((r = check_space(info->space, &sp))) return r;
    if (sp->session != s) return XR_ERROR_VALIDATION_FAILURE;
    if (info->viewConfigurationType != STEREO) return XR_ERROR_VIEW_CONFIGURATION_TYPE_UNSUPPORTED;
    if (info->displayTime <= 0) return XR_ERROR_TIME_INVALID;
    if ((r = two_call(capacity, count, 2)) || capacity == 0) return loss_filter(s, r);
    XrPosef base;
    int located = space_in_local(sp, &base);
    state->viewStateFlags = located ? LOCATION_ALL : 0;
    for (int i = 0; i < 2; ++i) {
        if (views[i].type != XR_TYPE_VIEW) return XR_ERROR_VALIDATION_FAILURE;
        XrPosef eye = pose_mul(s->track[0].pose, translation(i == 0 ? -IPD_M / 2 : IPD_M / 2, 0, 0));
        views[i].pose = located ? pose_mul(pose_inverse(base), eye) : IDENTITY;
        views[i].fov = EYE_FOV[i];
    }
    return loss_filter(s, XR_SUCCESS);
}

/* ------------------------------------------------------------------ swapchains --- */
static XrResult check_swapchain(XrSwapchain handle, struct XrSwapchain_T **out) {
    *out = lookup(handle, K_SWAPCHAIN);
    if (!*out) return XR_ERROR_HANDLE_INVALID;
    return ((struct XrSession_T *)(*out)->session)->instance->lost ? XR_ERROR_INSTANCE_LOST : XR_SUCCESS;
}

API(EnumerateSwapchainFormats, (XrSession session, uint32_t capacity, uint32_t *count, int64_t *formats),
    (session, capacity, count, formats)) {
    struct XrSession_T *s;
    XrResult r = check_session(session, &s);
    if (r || (r = two_call(capacity, count, 2)) || capacity == 0) return r;
    memcpy(formats, FORMATS, sizeof FORMATS);
    return XR_SUCCESS;
}

static XrResult check_swapchain_info(const XrSwapchainCreateInfo *info) {
    if (info->format != FORMATS[0] && info->format != FORMATS[1]) return XR_ERROR_SWAPCHAIN_FORMAT_UNSUPPORTED;
    if (info->width < 1 || info->height < 1 || info->width > MAX_SIZE || info->height > MAX_SIZE ||
        info->sampleCount < 1 || info->arraySize < 1 || info->mipCount < 1 || (info->faceCount != 1 && info->faceCount != 6))
        return XR_ERROR_VALIDATION_FAILURE;
    if (info->sampleCount != 1 || info->arraySize != 1 || info->faceCount != 1 || info->mipCount != 1 ||
        (info->createFlags & ~(XrFlags64)3))
        return XR_ERROR_FEATURE_UNSUPPORTED;
    return XR_SUCCESS;
}

/* Makes the swapchain's textures in the application's current GL context. */
static XrResult make_textures(struct XrSession_T *s, struct XrSwapchain_T *sc) {
    const struct gl *gl = &s->gl;
    GLint previous = 0;
    while (gl->GetError() != 0) {}
    gl->GetIntegerv(GL_TEXTURE_BINDING_2D, &previous);
    gl->GenTextures(IMAGE_COUNT, sc->images);
    for (uint32_t i = 0; i < IMAGE_COUNT; ++i) {
        gl->BindTexture(GL_TEXTURE_2D, sc->images[i]);
        gl->TexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, GL_LINEAR);
        gl->TexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, GL_LINEAR);
        gl->TexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MAX_LEVEL, 0);
        gl->TexImage2D(GL_TEXTURE_2D, 0, (GLint)sc->format, (GLsizei)sc->width, (GLsizei)sc->height, 0,
                       GL_RGBA, GL_UNSIGNED_BYTE, NULL);
    }
    gl->BindTexture(GL_TEXTURE_2D, (GLuint)previous);
    GLenum error = gl->GetError();
    if (error == 0 && sc->images[0] != 0) return XR_SUCCESS;
    fprintf(stderr, "surgplan test runtime: making swapchain textures failed (GL error 0x%x; is the context current?)\n", error);
    gl->DeleteTextures(IMAGE_COUNT, sc->images);
    return XR_ERROR_RUNTIME_FAILURE;
}

API(CreateSwapchain, (XrSession session, const XrSwapchainCreateInfo *info, XrSwapchain *swapchain), (session, info, swapchain)) {
    struct XrSession_T *s;
    XrResult r = check_session(session, &s);
    if (r) return r;
    if (!info || !swapchain || info->type != XR_TYPE_SWAPCHAIN_CREATE_INFO) return XR_ERROR_VALIDATION_FAILURE;
    if ((r = check_swapchain_info(info))) return r;
    struct XrSwapchain_T *sc = new_object(sizeof *sc, K_SWAPCHAIN, s);
    if (!sc) return XR_ERROR_OUT_OF_MEMORY;
    sc->session = s;
    sc->width = info->width;
    sc->height = info->height;
    sc->format = info->format;
    sc->is_static = (info->createFlags & 2) != 0;
    sc->last_released = -1;
    if ((r = make_textures(s, sc))) { destroy_object(&sc->obj); return r; }
    *swapchain = sc;
    return XR_SUCCESS;
}

API(DestroySwapchain, (XrSwapchain swapchain), (swapchain)) {
    struct XrSwapchain_T *sc = lookup(swapchain, K_SWAPCHAIN);
    if (!sc) return XR_ERROR_HANDLE_INVALID;
    ((struct XrSession_T *)sc->session)->gl.DeleteTextures(IMAGE_COUNT, sc->images);
    destroy_object(&sc->obj);
    return XR_SUCCESS;
}

API(EnumerateSwapchainImages, (XrSwapchain swapchain, uint32_t capacity, uint32_t *count, XrBaseInStructure *images),
    (swapchain, capacity, count, images)) {
    struct XrSwapchain_T *sc;
    XrResult r = check_swapchain(swapchain, &sc);
    if (r || (r = two_call(capacity, count, IMAGE_COUNT)) || capacity == 0) return r;
    XrSwapchainImageOpenGLKHR *gl_images = (void *)images;
    for (uint32_t i = 0; i < IMAGE_COUNT; ++i) {
        if (gl_images[i].type != XR_TYPE_SWAPCHAIN_IMAGE_OPENGL_KHR) return XR_ERROR_VALIDATION_FAILURE;
        gl_images[i].image = sc->images[i];
    }
    return XR_SUCCESS;
}

API(AcquireSwapchainImage, (XrSwapchain swapchain, const XrBaseInStructure *info, uint32_t *index), (swapchain, info, index)) {
    struct XrSwapchain_T *sc;
    XrResult r = check_swapchain(swapchain, &sc);
    if (r) return r;
    if (!index || (info && info->type != XR_TYPE_SWAPCHAIN_IMAGE_ACQUIRE_INFO)) return XR_ERROR_VALIDATION_FAILURE;
    if (sc->n_acquired == IMAGE_COUNT || (sc->is_static && sc->ever_acquired)) return XR_ERROR_CALL_ORDER_INVALID;
    *index = sc->next_image;
    sc->acquired[sc->n_acquired++] = sc->next_image;
    sc->next_image = (sc->next_image + 1) % IMAGE_COUNT;
    sc->ever_acquired = 1;
    return loss_filter(sc->session, XR_SUCCESS);
}

/* Images are always ready at once: the oldest acquired one becomes the waited one. */
API(WaitSwapchainImage, (XrSwapchain swapchain, const XrSwapchainImageWaitInfo *info), (swapchain, info)) {
    struct XrSwapchain_T *sc;
    XrResult r = check_swapchain(swapchain, &sc);
    if (r) return r;
    if (!info || info->type != XR_TYPE_SWAPCHAIN_IMAGE_WAIT_INFO) return XR_ERROR_VALIDATION_FAILURE;
    if (sc->n_waited > 0 || sc->n_acquired == 0) return XR_ERROR_CALL_ORDER_INVALID;
    sc->n_waited = 1;
    return loss_filter(sc->session, XR_SUCCESS);
}

API(ReleaseSwapchainImage, (XrSwapchain swapchain, const XrBaseInStructure *info), (swapchain, info)) {
    struct XrSwapchain_T *sc;
    XrResult r = check_swapchain(swapchain, &sc);
    if (r) return r;
    if (info && info->type != XR_TYPE_SWAPCHAIN_IMAGE_RELEASE_INFO) return XR_ERROR_VALIDATION_FAILURE;
    if (sc->n_waited == 0) return XR_ERROR_CALL_ORDER_INVALID;
    sc->last_released = (int)sc->acquired[0];
    memmove(sc->acquired, sc->acquired + 1, (IMAGE_COUNT - 1) * sizeof sc->acquired[0]);
    sc->n_acquired--;
    sc->n_waited = 0;
    return loss_filter(sc->session, XR_SUCCESS);
}

/* ------------------------------------------------------------------ frame loop --- */
static int shows(const struct XrSession_T *s) { return s->state == ST_VISIBLE || s->state == ST_FOCUSED; }

API(WaitFrame, (XrSession session, const XrBaseInStructure *info, XrFrameState *state), (session, info, state)) {
    struct XrSession_T *s;
    XrResult r = check_session(session, &s);
    if (r) return r;
    if (!state || state->type != XR_TYPE_FRAME_STATE || (info && info->type != XR_TYPE_FRAME_WAIT_INFO))
        return XR_ERROR_VALIDATION_FAILURE;
    if (!s->running) return XR_ERROR_SESSION_NOT_RUNNING;
    XrTime now = now_ns(), after = now > s->last_predicted ? now : s->last_predicted;
    XrTime predicted = (after / FRAME_PERIOD_NS + 1) * FRAME_PERIOD_NS;
    if (s->instance->cfg.throttle && predicted - FRAME_PERIOD_NS > now) {
        XrTime wake = predicted - FRAME_PERIOD_NS;
        struct timespec t = {(time_t)(wake / 1000000000LL), (long)(wake % 1000000000LL)};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL);
    }
    s->last_predicted = predicted;
    apply_script(s, s->waits++);
    s->pending_waits = 1;
    state->predictedDisplayTime = predicted;
    state->predictedDisplayPeriod = FRAME_PERIOD_NS;
    state->shouldRender = shows(s) && !s->loss_pending;
    return loss_filter(s, XR_SUCCESS);
}

API(BeginFrame, (XrSession session, const XrBaseInStructure *info), (session, info)) {
    struct XrSession_T *s;
    XrResult r = check_session(session, &s);
    if (r) return r;
    if (info && info->type != XR_TYPE_FRAME_BEGIN_INFO) return XR_ERROR_VALIDATION_FAILURE;
    if (!s->running) return XR_ERROR_SESSION_NOT_RUNNING;
    if (!s->pending_waits) return XR_ERROR_CALL_ORDER_INVALID;
    s->pending_waits = 0;
    r = s->frame_begun ? XR_FRAME_DISCARDED : XR_SUCCESS;
    s->frame_begun = 1;
    return loss_filter(s, r);
}

/* The swapchain of a sub-image if it is this session's, has a released image and holds the rect. */
static XrResult check_sub_image(const struct XrSession_T *s, const XrSwapchainSubImage *sub) {
    const struct XrSwapchain_T *sc = lookup(sub->swapchain, K_SWAPCHAIN);
    const XrRect2Di *rect = &sub->imageRect;
    if (!sc || sc->session != s) return XR_ERROR_HANDLE_INVALID;
    if (sc->last_released < 0) return XR_ERROR_LAYER_INVALID;
    if (sub->imageArrayIndex != 0) return XR_ERROR_VALIDATION_FAILURE;
    if (rect->offset.x < 0 || rect->offset.y < 0 || rect->extent.width < 1 || rect->extent.height < 1 ||
        (uint64_t)rect->offset.x + (uint64_t)rect->extent.width > sc->width ||
        (uint64_t)rect->offset.y + (uint64_t)rect->extent.height > sc->height)
        return XR_ERROR_SWAPCHAIN_RECT_INVALID;
    return XR_SUCCESS;
}

static XrResult check_layer(const struct XrSession_T *s, const XrCompositionLayerBaseHeader *layer) {
    XrResult r;
    if (!layer) return XR_ERROR_LAYER_INVALID;
    if (layer->type != XR_TYPE_COMPOSITION_LAYER_PROJECTION && layer->type != XR_TYPE_COMPOSITION_LAYER_QUAD)
        return XR_ERROR_LAYER_INVALID;
    if (layer->layerFlags & ~(XrFlags64)7) return XR_ERROR_VALIDATION_FAILURE;
    const struct XrSpace_T *sp = lookup(layer->space, K_SPACE);
    if (!sp || sp->session != s) return XR_ERROR_HANDLE_INVALID;
    if (layer->type == XR_TYPE_COMPOSITION_LAYER_QUAD) {
        const XrCompositionLayerQuad *q = (const void *)layer;
        if (q->eyeVisibility < 0 || q->eyeVisibility > 2) return XR_ERROR_VALIDATION_FAILURE;
        if (!pose_valid(&q->pose)) return XR_ERROR_POSE_INVALID;
        return check_sub_image(s, &q->subImage);
    }
    const XrCompositionLayerProjection *p = (const void *)layer;
    if (p->viewCount != 2 || !p->views) return XR_ERROR_VALIDATION_FAILURE;
    for (uint32_t i = 0; i < 2; ++i) {
        if (p->views[i].type != XR_TYPE_COMPOSITION_LAYER_PROJECTION_VIEW) return XR_ERROR_VALIDATION_FAILURE;
        if (!pose_valid(&p->views[i].pose)) return XR_ERROR_POSE_INVALID;
        if ((r = check_sub_image(s, &p->views[i].subImage))) return r;
    }
    return XR_SUCCESS;
}

/* Reads the last released image of the sub-image's swapchain, crops it and writes a P6 PPM
 * with its top row first. */
static int write_ppm(const struct XrSession_T *s, const XrSwapchainSubImage *sub, const char *path) {
    const struct XrSwapchain_T *sc = lookup(sub->swapchain, K_SWAPCHAIN);
    const struct gl *gl = &s->gl;
    const XrRect2Di *rc = &sub->imageRect;
    unsigned char *pixels = malloc((size_t)sc->width * sc->height * 4), *row = malloc((size_t)rc->extent.width * 3);
    GLint texture = 0, pack[4] = {0, 0, 0, 4}, buffer = 0;
    static const GLenum PACK[4] = {GL_PACK_ROW_LENGTH, GL_PACK_SKIP_ROWS, GL_PACK_SKIP_PIXELS, GL_PACK_ALIGNMENT};
    FILE *f = NULL;
    int ok = pixels && row;
    if (ok) {
        gl->GetIntegerv(GL_TEXTURE_BINDING_2D, &texture);
        gl->GetIntegerv(GL_PIXEL_PACK_BUFFER_BINDING, &buffer);
        for (int i = 0; i < 4; ++i) gl->GetIntegerv(PACK[i], &pack[i]);
        for (int i = 0; i < 4; ++i) gl->PixelStorei(PACK[i], i == 3 ? 1 : 0);
        if (buffer) gl->BindBuffer(GL_PIXEL_PACK_BUFFER, 0);
        gl->BindTexture(GL_TEXTURE_2D, sc->images[sc->last_released]);
        gl->GetTexImage(GL_TEXTURE_2D, 0, GL_RGBA, GL_UNSIGNED_BYTE, pixels);
        gl->BindTexture(GL_TEXTURE_2D, (GLuint)texture);
        if (buffer) gl->BindBuffer(GL_PIXEL_PACK_BUFFER, (GLuint)buffer);
        for (int i = 0; i < 4; ++i) gl->PixelStorei(PACK[i], pack[i]);
        ok = (f = fopen(path, "wb")) != NULL;
    }
    if (ok) ok = fprintf(f, "P6\n%d %d\n255\n", rc->extent.width, rc->extent.height) > 0;
    for (int y = 0; ok && y < rc->extent.height; ++y) {
        const unsigned char *src = pixels + ((size_t)(rc->offset.y + rc->extent.height - 1 - y) * sc->width + (size_t)rc->offset.x) * 4;
        for (int x = 0; x < rc->extent.width; ++x) memcpy(row + 3 * x, src + 4 * x, 3);
        ok = fwrite(row, 3, (size_t)rc->extent.width, f) == (size_t)rc->extent.width;
    }
    if (f && fclose(f) != 0) ok = 0;
    free(pixels);
    free(row);
    if (!ok) fprintf(stderr, "surgplan test runtime: cannot write captured image %s\n", path);
    return ok;
}

static const char *space_name(const struct XrSpace_T *sp) {
    static const char *const names[4] = {"ACTION", "VIEW", "LOCAL", "STAGE"};
    return names[sp->ref];
}

/* Writes `n` floats as a JSON array (null for a non-finite value, so the line stays JSON). */
static void json_floats(FILE *j, const float *v, int n) {
    for (int i = 0; i < n; ++i) {
        fputs(i ? ", " : "[", j);
        if (isfinite(v[i])) fprintf(j, "%.9g", v[i]);
        else fputs("null", j);
    }
    fputc(']', j);
}

static void json_pose(FILE *j, const XrPosef *p) {
    fprintf(j, "\"pose\": {\"position\": [%.9g, %.9g, %.9g], \"orientation\": [%.9g, %.9g, %.9g, %.9g]}",
            p->position.x, p->position.y, p->position.z, p->orientation.x, p->orientation.y,
            p->orientation.z, p->orientation.w);
}

/* Writes the sub-image's rect, image index and file (capturing it when `frame` is captured). */
static int json_image(FILE *j, const struct XrSession_T *s, const XrSwapchainSubImage *sub, uint64_t frame,
                      const char *what, int number, int capture) {
    const struct XrSwapchain_T *sc = lookup(sub->swapchain, K_SWAPCHAIN);
    const XrRect2Di *rc = &sub->imageRect;
    char name[64], path[2200];
    fprintf(j, ", \"rect\": [%d, %d, %d, %d], \"image_index\": %d, \"file\": ", rc->offset.x, rc->offset.y,
            rc->extent.width, rc->extent.height, sc->last_released);
    if (!capture) { fputs("null", j); return 1; }
    snprintf(name, sizeof name, "frame_%06llu_%s%d.ppm", (unsigned long long)frame, what, number);
    snprintf(path, sizeof path, "%s/%s", s->instance->cfg.capture_dir, name);
    fprintf(j, "\"%s\"", name);
    return write_ppm(s, sub, path);
}

static int json_layer(FILE *j, const struct XrSession_T *s, const XrCompositionLayerBaseHeader *layer,
                      uint64_t frame, int capture, int *views, int *quads) {
    const char *space = space_name(lookup(layer->space, K_SPACE));
    int ok = 1;
    if (layer->type == XR_TYPE_COMPOSITION_LAYER_QUAD) {
        const XrCompositionLayerQuad *q = (const void *)layer;
        fprintf(j, "{\"type\": \"quad\", \"space\": \"%s\", \"eye_visibility\": %d, ", space, q->eyeVisibility);
        json_pose(j, &q->pose);
        const float size[2] = {q->size.width, q->size.height};
        fputs(", \"size\": ", j);
        json_floats(j, size, 2);
        ok = json_image(j, s, &q->subImage, frame, "quad", (*quads)++, capture);
        fputc('}', j);
        return ok;
    }
    const XrCompositionLayerProjection *p = (const void *)layer;
    fprintf(j, "{\"type\": \"projection\", \"space\": \"%s\", \"views\": [", space);
    for (uint32_t i = 0; i < p->viewCount && ok; ++i) {
        const XrFovf *fov = &p->views[i].fov;
        fputs(i ? ", {" : "{", j);
        json_pose(j, &p->views[i].pose);
        const float angles[4] = {fov->angleLeft, fov->angleRight, fov->angleUp, fov->angleDown};
        fputs(", \"fov\": ", j);
        json_floats(j, angles, 4);
        ok = json_image(j, s, &p->views[i].subImage, frame, "view", (*views)++, capture);
        fputc('}', j);
    }
    fputs("]}", j);
    return ok;
}

/* SURGPLAN_XR_TEST_CAPTURE_DIR: one JSON line per xrEndFrame in frames.jsonl (+ PPM images). */
static int capture_frame(const struct XrSession_T *s, const XrFrameEndInfo *info, uint64_t frame) {
    const struct config *cfg = &s->instance->cfg;
    char *text = NULL, path[2200];
    size_t size = 0;
    int views = 0, quads = 0, ok = 1, capture = frame % cfg->capture_every == 0;
    if (!cfg->capture_dir[0]) return 1;
    FILE *j = open_memstream(&text, &size);
    if (!j) return 0;
    fprintf(j, "{\"frame\": %llu, \"display_time_ns\": %lld, \"blend\": \"%s\", \"layers\": [",
            (unsigned long long)frame, (long long)info->displayTime,
            info->environmentBlendMode == BLEND_ADDITIVE ? "ADDITIVE" : "OPAQUE");
    for (uint32_t i = 0; i < info->layerCount && ok; ++i) {
        if (i) fputs(", ", j);
        ok = json_layer(j, s, info->layers[i], frame, capture, &views, &quads);
    }
    fputs("]}\n", j);
    fclose(j);
    snprintf(path, sizeof path, "%s/frames.jsonl", cfg->capture_dir);
    FILE *out = ok ? fopen(path, "a") : NULL;
    ok = out && fwrite(text, 1, size, out) == size;
    if (out && fclose(out) != 0) ok = 0;
    if (!ok) fprintf(stderr, "surgplan test runtime: cannot write frame %llu capture in %s\n", (unsigned long long)frame, cfg->capture_dir);
    free(text);
    return ok;
}

/* After a successful xrEndFrame: SYNCHRONIZED -> VISIBLE -> FOCUSED, and the scripted losses. */
static void after_end_frame(struct XrSession_T *s) {
    XrInstance inst = s->instance;
    if (s->state == ST_SYNCHRONIZED && !s->exit_requested && !s->loss_pending) {
        set_state(s, ST_VISIBLE);
        set_state(s, ST_FOCUSED);
    }
    if (inst->cfg.lose_at && s->ends == inst->cfg.lose_at && !s->loss_pending) {
        s->loss_pending = 1;
        set_state(s, ST_LOSS_PENDING);
    }
    if (inst->cfg.instance_lost_at && s->ends == inst->cfg.instance_lost_at) {
        inst->lost = inst->loss_event_pending = 1;
        inst->queue_count = 0;
    }
}

API(EndFrame, (XrSession session, const XrFrameEndInfo *info), (session, info)) {
    struct XrSession_T *s;
    XrResult r = check_session(session, &s);
    if (r) return r;
    if (!info || info->type != XR_TYPE_FRAME_END_INFO) return XR_ERROR_VALIDATION_FAILURE;
    if (!s->running) return XR_ERROR_SESSION_NOT_RUNNING;
    if (!s->frame_begun) return XR_ERROR_CALL_ORDER_INVALID;
    if (info->displayTime <= 0) return XR_ERROR_TIME_INVALID;
    if (!blend_offered(s->instance, info->environmentBlendMode)) return XR_ERROR_ENVIRONMENT_BLEND_MODE_UNSUPPORTED;
    if (info->layerCount > MAX_LAYERS) return XR_ERROR_LAYER_LIMIT_EXCEEDED;
    if (info->layerCount && !info->layers) return XR_ERROR_VALIDATION_FAILURE;
    for (uint32_t i = 0; i < info->layerCount; ++i)
        if ((r = check_layer(s, info->layers[i]))) return r;
    if (!capture_frame(s, info, s->ends)) return XR_ERROR_RUNTIME_FAILURE;
    s->frame_begun = 0;
    s->ends++;
    r = loss_filter(s, XR_SUCCESS);
    after_end_frame(s);
    return r;
}

/* ------------------------------------------------------------------ actions --- */
static int name_ok(const char *s, size_t size) {
    size_t n = strnlen(s, size);
    if (n == 0 || n == size) return 0;
    for (size_t i = 0; i < n; ++i)
        if (!path_char_ok(s[i]) || s[i] == '/') return 0;
    return 1;
}

static XrResult check_action_set(XrActionSet handle, struct XrActionSet_T **out) {
    *out = lookup(handle, K_ACTION_SET);
    if (!*out) return XR_ERROR_HANDLE_INVALID;
    return ((struct XrInstance_T *)(*out)->instance)->lost ? XR_ERROR_INSTANCE_LOST : XR_SUCCESS;
}

API(CreateActionSet, (XrInstance instance, const XrActionSetCreateInfo *info, XrActionSet *set), (instance, info, set)) {
    XrInstance inst;
    XrResult r = check_instance(instance, &inst);
    if (r) return r;
    if (!info || !set || info->type != XR_TYPE_ACTION_SET_CREATE_INFO) return XR_ERROR_VALIDATION_FAILURE;
    if (!name_ok(info->actionSetName, 64)) return XR_ERROR_NAME_INVALID;
    if (strnlen(info->localizedActionSetName, 128) == 0 || strnlen(info->localizedActionSetName, 128) == 128)
        return XR_ERROR_LOCALIZED_NAME_INVALID;
    for (struct object *o = g_live; o; o = o->next_live) {
        struct XrActionSet_T *other = (void *)o;
        if (o->kind != K_ACTION_SET || other->instance != inst) continue;
        if (strcmp(other->name, info->actionSetName) == 0) return XR_ERROR_NAME_DUPLICATED;
        if (strcmp(other->localized, info->localizedActionSetName) == 0) return XR_ERROR_LOCALIZED_NAME_DUPLICATED;
    }
    struct XrActionSet_T *created = new_object(sizeof *created, K_ACTION_SET, inst);
    if (!created) return XR_ERROR_OUT_OF_MEMORY;
    created->instance = inst;
    memcpy(created->name, info->actionSetName, sizeof created->name);
    memcpy(created->localized, info->localizedActionSetName, sizeof created->localized);
    created->priority = info->priority;
    *set = created;
    return XR_SUCCESS;
}

API(DestroyActionSet, (XrActionSet set), (set)) {
    struct XrActionSet_T *as = lookup(set, K_ACTION_SET);
    if (!as) return XR_ERROR_HANDLE_INVALID;
    destroy_object(&as->obj);
    return XR_SUCCESS;
}

/* Subaction paths must be top-level user paths, each at most once. */
static XrResult check_subactions(XrInstance inst, const XrActionCreateInfo *info) {
    static const char *const allowed[] = {"/user/hand/left", "/user/hand/right", "/user/head", "/user/gamepad"};
    if (info->countSubactionPaths > 8 || (info->countSubactionPaths && !info->subactionPaths))
        return XR_ERROR_VALIDATION_FAILURE;
    for (uint32_t i = 0; i < info->countSubactionPaths; ++i) {
        const char *s = path_string(inst, info->subactionPaths[i]);
        int ok = 0;
        if (!s) return XR_ERROR_PATH_INVALID;
        for (size_t k = 0; k < sizeof allowed / sizeof allowed[0]; ++k) ok |= strcmp(s, allowed[k]) == 0;
        for (uint32_t k = 0; k < i; ++k) ok &= info->subactionPaths[k] != info->subactionPaths[i];
        if (!ok) return XR_ERROR_PATH_UNSUPPORTED;
    }
    return XR_SUCCESS;
}

API(CreateAction, (XrActionSet set, const XrActionCreateInfo *info, XrAction *action), (set, info, action)) {
    struct XrActionSet_T *as;
    XrResult r = check_action_set(set, &as);
    if (r) return r;
    if (!info || !action || info->type != XR_TYPE_ACTION_CREATE_INFO) return XR_ERROR_VALIDATION_FAILURE;
    if (as->attached) return XR_ERROR_ACTIONSETS_ALREADY_ATTACHED;
    if (!name_ok(info->actionName, 64)) return XR_ERROR_NAME_INVALID;
    if (strnlen(info->localizedActionName, 128) == 0 || strnlen(info->localizedActionName, 128) == 128)
        return XR_ERROR_LOCALIZED_NAME_INVALID;
    if (info->actionType < ACT_BOOLEAN || (info->actionType > ACT_POSE && info->actionType != ACT_VIBRATION))
        return XR_ERROR_VALIDATION_FAILURE;
    if ((r = check_subactions(as->instance, info))) return r;
    for (struct object *o = g_live; o; o = o->next_live) {
        struct XrAction_T *other = (void *)o;
        if (o->kind != K_ACTION || other->set != as) continue;
        if (strcmp(other->name, info->actionName) == 0) return XR_ERROR_NAME_DUPLICATED;
        if (strcmp(other->localized, info->localizedActionName) == 0) return XR_ERROR_LOCALIZED_NAME_DUPLICATED;
    }
    struct XrAction_T *a = new_object(sizeof *a, K_ACTION, as);
    if (!a) return XR_ERROR_OUT_OF_MEMORY;
    a->set = as;
    memcpy(a->name, info->actionName, sizeof a->name);
    memcpy(a->localized, info->localizedActionName, sizeof a->localized);
    a->type = info->actionType;
    a->subaction_count = info->countSubactionPaths;
    if (a->subaction_count) memcpy(a->subactions, info->subactionPaths, a->subaction_count * sizeof(XrPath));
    *action = a;
    return XR_SUCCESS;
}

API(DestroyAction, (XrAction action), (action)) {
    struct XrAction_T *a = lookup(action, K_ACTION);
    if (!a) return XR_ERROR_HANDLE_INVALID;
    destroy_object(&a->obj);
    return XR_SUCCESS;
}

/* Components of the emulated controllers (both hands unless the prefix says left/right). */
static const char *const SIMPLE_COMPONENTS[] = {"/input/select/click", "/input/menu/click", "/input/grip/pose",
                                                "/input/aim/pose", "/output/haptic", NULL};
static const char *const TOUCH_COMPONENTS[] = {
    "/input/squeeze/value", "/input/trigger/value", "/input/trigger/touch", "/input/thumbstick/x",
    "/input/thumbstick/y", "/input/thumbstick/click", "/input/thumbstick/touch", "/input/thumbstick",
    "/input/thumbrest/touch", "/input/grip/pose", "/input/aim/pose", "/output/haptic",
    "left/input/x/click", "left/input/x/touch", "left/input/y/click", "left/input/y/touch", "left/input/menu/click",
    "right/input/a/click", "right/input/a/touch", "right/input/b/click", "right/input/b/touch",
    "right/input/system/click", NULL};

/* Whether `component` (after /user/hand/<side>) is listed, or is the identifier of a listed
 * "/input/<identifier>/<component>" path (the spec lets the runtime pick the component). */
static int component_listed(const char *const *list, const char *side, const char *component) {
    for (; *list; ++list) {
        const char *c = *list;
        if (strncmp(c, "left/", 5) == 0 || strncmp(c, "right/", 6) == 0) {
            size_t n = strlen(side);
            if (strncmp(c, side, n) != 0 || c[n] != '/') continue;
            c += n;
        }
        if (strcmp(component, c) == 0) return 1;
        const char *last = strrchr(c, '/');
        int slashes = 0;
        for (const char *k = c; *k; ++k) slashes += *k == '/';
        if (slashes == 3 && strlen(component) == (size_t)(last - c) && strncmp(component, c, (size_t)(last - c)) == 0)
            return 1;
    }
    return 0;
}

/* Is `binding` a valid input/output path of the interaction profile `profile`? */
static int binding_valid(const char *profile, const char *binding) {
    const char *const *list = strcmp(profile, PROFILE_TOUCH) == 0 ? TOUCH_COMPONENTS
                              : strcmp(profile, PROFILE_SIMPLE) == 0 ? SIMPLE_COMPONENTS : NULL;
    for (int h = 0; h < 2; ++h) {
        size_t n = strlen(HAND_PATHS[h]);
        if (strncmp(binding, HAND_PATHS[h], n) != 0 || binding[n] != '/') continue;
        if (!list) return 1; /* another standard profile: accepted, never emulated */
        return component_listed(list, h ? "right" : "left", binding + n);
    }
    return !list && strncmp(binding, "/user/", 6) == 0;
}

API(SuggestInteractionProfileBindings, (XrInstance instance, const XrInteractionProfileSuggestedBinding *info),
    (instance, info)) {
    XrInstance inst;
    XrResult r = check_instance(instance, &inst);
    if (r) return r;
    if (!info || info->type != XR_TYPE_INTERACTION_PROFILE_SUGGESTED_BINDING || info->countSuggestedBindings == 0 ||
        !info->suggestedBindings)
        return XR_ERROR_VALIDATION_FAILURE;
    const char *profile = path_string(inst, info->interactionProfile);
    if (!profile) return XR_ERROR_PATH_INVALID;
    if (strncmp(profile, "/interaction_profiles/", 22) != 0) return XR_ERROR_PATH_UNSUPPORTED;
    for (uint32_t i = 0; i < info->countSuggestedBindings; ++i) {
        struct XrAction_T *a = lookup(info->suggestedBindings[i].action, K_ACTION);
        const char *binding = path_string(inst, info->suggestedBindings[i].binding);
        if (!a || ((struct XrActionSet_T *)a->set)->instance != inst) return XR_ERROR_HANDLE_INVALID;
        if (((struct XrActionSet_T *)a->set)->attached) return XR_ERROR_ACTIONSETS_ALREADY_ATTACHED;
        if (!binding) return XR_ERROR_PATH_INVALID;
        if (!binding_valid(profile, binding)) return XR_ERROR_PATH_UNSUPPORTED;
    }
    /* Replace this profile's earlier suggestions for every action of the instance. */
    for (struct object *o = g_live; o; o = o->next_live) {
        struct XrAction_T *a = (void *)o;
        if (o->kind != K_ACTION || ((struct XrActionSet_T *)a->set)->instance != inst) continue;
        uint32_t kept = 0;
        for (uint32_t k = 0; k < a->binding_count; ++k)
            if (a->bindings[k].profile != info->interactionProfile) a->bindings[kept++] = a->bindings[k];
        a->binding_count = kept;
    }
    for (uint32_t i = 0; i < info->countSuggestedBindings; ++i) {
        struct XrAction_T *a = info->suggestedBindings[i].action;
        struct binding *grown = realloc(a->bindings, (a->binding_count + 1) * sizeof *grown);
        if (!grown) return XR_ERROR_OUT_OF_MEMORY;
        a->bindings = grown;
        a->bindings[a->binding_count].profile = info->interactionProfile;
        a->bindings[a->binding_count++].path = info->suggestedBindings[i].binding;
    }
    return XR_SUCCESS;
}

/* Does any action of the instance have a suggestion for `profile`? */
static int profile_suggested(XrInstance inst, const char *profile) {
    for (struct object *o = g_live; o; o = o->next_live) {
        struct XrAction_T *a = (void *)o;
        if (o->kind != K_ACTION || ((struct XrActionSet_T *)a->set)->instance != inst) continue;
        for (uint32_t k = 0; k < a->binding_count; ++k)
            if (strcmp(path_string(inst, a->bindings[k].profile), profile) == 0) return 1;
    }
    return 0;
}

API(AttachSessionActionSets, (XrSession session, const XrSessionActionSetsAttachInfo *info), (session, info)) {
    struct XrSession_T *s;
    XrResult r = check_session(session, &s);
    if (r) return r;
    if (!info || info->type != XR_TYPE_SESSION_ACTION_SETS_ATTACH_INFO || info->countActionSets == 0 || !info->actionSets)
        return XR_ERROR_VALIDATION_FAILURE;
    if (s->profile != XR_NULL_PATH) return XR_ERROR_ACTIONSETS_ALREADY_ATTACHED;
    for (uint32_t i = 0; i < info->countActionSets; ++i) {
        struct XrActionSet_T *as = lookup(info->actionSets[i], K_ACTION_SET);
        if (!as || as->instance != s->instance) return XR_ERROR_HANDLE_INVALID;
    }
    for (uint32_t i = 0; i < info->countActionSets; ++i) {
        struct XrActionSet_T *as = info->actionSets[i];
        as->attached = 1;
        as->session = s;
    }
    s->profile = intern(s->instance, profile_suggested(s->instance, PROFILE_TOUCH) ? PROFILE_TOUCH : PROFILE_SIMPLE);
    push_event(s->instance, XR_TYPE_EVENT_DATA_INTERACTION_PROFILE_CHANGED, s, 0);
    return XR_SUCCESS;
}

API(GetCurrentInteractionProfile, (XrSession session, XrPath top, XrInteractionProfileState *state), (session, top, state)) {
    struct XrSession_T *s;
    XrResult r = check_session(session, &s);
    if (r) return r;
    if (!state || state->type != XR_TYPE_INTERACTION_PROFILE_STATE) return XR_ERROR_VALIDATION_FAILURE;
    if (s->profile == XR_NULL_PATH) return XR_ERROR_ACTIONSET_NOT_ATTACHED;
    const char *path = path_string(s->instance, top);
    if (!path) return XR_ERROR_PATH_INVALID;
    if (strcmp(path, "/user/head") == 0 || strcmp(path, "/user/gamepad") == 0) state->interactionProfile = XR_NULL_PATH;
    else if (hand_of(s->instance, top) >= 0) state->interactionProfile = s->profile;
    else return XR_ERROR_PATH_UNSUPPORTED;
    return XR_SUCCESS;
}

enum { SRC_NONE, SRC_SQUEEZE, SRC_TRIGGER, SRC_POSE, SRC_ZERO };

/* What a binding of the current profile reads for `hand`; *click says it is a click input. */
static int source_of(const struct XrSession_T *s, XrPath binding, int hand, int *click) {
    const char *path = path_string(s->instance, binding);
    size_t n = strlen(HAND_PATHS[hand]);
    if (!path || strncmp(path, HAND_PATHS[hand], n) != 0 || path[n] != '/') return SRC_NONE;
    const char *c = path + n;
    size_t len = strlen(c);
    *click = len > 6 && strcmp(c + len - 6, "/click") == 0;
    if (strncmp(c, "/input/squeeze", 14) == 0) return SRC_SQUEEZE;
    if (strncmp(c, "/input/trigger/value", 20) == 0 || strcmp(c, "/input/trigger") == 0 ||
        strcmp(c, "/input/trigger/click") == 0 || strncmp(c, "/input/select", 13) == 0)
        return SRC_TRIGGER;
    if (strncmp(c, "/input/grip", 11) == 0 || strncmp(c, "/input/aim", 10) == 0) return SRC_POSE;
    return SRC_ZERO;
}

static int has_pose_binding(const struct XrSession_T *s, const struct XrAction_T *a, int hand) {
    int click;
    for (uint32_t k = 0; k < a->binding_count; ++k)
        if (a->bindings[k].profile == s->profile && source_of(s, a->bindings[k].path, hand, &click) == SRC_POSE) return 1;
    return 0;
}

/* Combines the action's bound sources for `hand`: boolean OR, float largest magnitude. */
static int read_hand(const struct XrSession_T *s, const struct XrAction_T *a, int hand, float *value) {
    int bound = 0;
    *value = 0;
    for (uint32_t k = 0; k < a->binding_count; ++k) {
        int click = 0, src;
        if (a->bindings[k].profile != s->profile || !(src = source_of(s, a->bindings[k].path, hand, &click))) continue;
        if ((src == SRC_POSE) != (a->type == ACT_POSE)) continue; /* mismatched kinds are ignored */
        bound = 1;
        const struct tracked *t = &s->track[1 + hand];
        float v = src == SRC_SQUEEZE ? t->squeeze : src == SRC_TRIGGER ? t->trigger : 0.0f;
        if (click || a->type == ACT_BOOLEAN) v = v > 0.5f ? 1.0f : 0.0f;
        if (fabsf(v) > fabsf(*value)) *value = v;
    }
    return bound;
}

static void update_slot(struct slot *slot, int active, float value, XrTime now) {
    if (!active) value = 0;
    slot->changed = active && slot->active && value != slot->value;
    if (slot->changed || (active && !slot->active)) slot->last_change = now;
    slot->active = active;
    slot->value = value;
}

/* Whether the sync info makes `set` active for `hand` (a NULL subaction path means both). */
static int set_active(const XrActionsSyncInfo *info, const struct XrActionSet_T *set, XrPath hand_path) {
    for (uint32_t i = 0; i < info->countActiveActionSets; ++i)
        if (info->activeActionSets[i].actionSet == set &&
            (info->activeActionSets[i].subactionPath == XR_NULL_PATH || info->activeActionSets[i].subactionPath == hand_path))
            return 1;
    return 0;
}

API(SyncActions, (XrSession session, const XrActionsSyncInfo *info), (session, info)) {
    struct XrSession_T *s;
    XrResult r = check_session(session, &s);
    if (r) return r;
    if (!info || info->type != XR_TYPE_ACTIONS_SYNC_INFO || (info->countActiveActionSets && !info->activeActionSets))
        return XR_ERROR_VALIDATION_FAILURE;
    for (uint32_t i = 0; i < info->countActiveActionSets; ++i) {
        struct XrActionSet_T *as = lookup(info->activeActionSets[i].actionSet, K_ACTION_SET);
        XrPath sub = info->activeActionSets[i].subactionPath;
        if (!as) return XR_ERROR_HANDLE_INVALID;
        if (!as->attached || as->session != s) return XR_ERROR_ACTIONSET_NOT_ATTACHED;
        if (sub != XR_NULL_PATH && !path_string(s->instance, sub)) return XR_ERROR_PATH_INVALID;
    }
    int focused = s->state == ST_FOCUSED && !s->loss_pending;
    XrTime now = now_ns();
    XrPath hands[2] = {intern(s->instance, HAND_PATHS[0]), intern(s->instance, HAND_PATHS[1])};
    for (struct object *o = g_live; o; o = o->next_live) {
        struct XrAction_T *a = (void *)o;
        if (o->kind != K_ACTION || !action_attached(a, s)) continue;
        float v[2] = {0, 0}, any = 0;
        int act[2];
        for (int h = 0; h < 2; ++h) {
            act[h] = focused && set_active(info, a->set, hands[h]) && read_hand(s, a, h, &v[h]);
            if (act[h] && fabsf(v[h]) > fabsf(any)) any = v[h];
            update_slot(&a->slots[h], act[h], act[h] ? v[h] : 0, now);
        }
        update_slot(&a->slots[2], act[0] || act[1], any, now);
    }
    return loss_filter(s, focused ? XR_SUCCESS : XR_SESSION_NOT_FOCUSED);
}

/* The state slot named by a get-info (checks handle, type, attachment and subaction path). */
static XrResult get_slot(XrSession session, const XrActionStateGetInfo *info, int type, const struct slot **out) {
    static const struct slot inactive;
    struct XrSession_T *s;
    XrResult r = check_session(session, &s);
    if (r) return r;
    if (!info || info->type != XR_TYPE_ACTION_STATE_GET_INFO) return XR_ERROR_VALIDATION_FAILURE;
    struct XrAction_T *a = lookup(info->action, K_ACTION);
    if (!a || ((struct XrActionSet_T *)a->set)->instance != s->instance) return XR_ERROR_HANDLE_INVALID;
    if (a->type != type) return XR_ERROR_ACTION_TYPE_MISMATCH;
    if (!action_attached(a, s)) return XR_ERROR_ACTIONSET_NOT_ATTACHED;
    *out = &a->slots[2];
    if (info->subactionPath == XR_NULL_PATH) return XR_SUCCESS;
    if (!path_string(s->instance, info->subactionPath)) return XR_ERROR_PATH_INVALID;
    int declared = 0;
    for (uint32_t i = 0; i < a->subaction_count; ++i) declared |= a->subactions[i] == info->subactionPath;
    if (!declared) return XR_ERROR_PATH_UNSUPPORTED;
    int hand = hand_of(s->instance, info->subactionPath);
    *out = hand >= 0 ? &a->slots[hand] : &inactive;
    return XR_SUCCESS;
}

API(GetActionStateBoolean, (XrSession session, const XrActionStateGetInfo *info, XrActionStateBoolean *state),
    (session, info, state)) {
    const struct slot *slot;
    XrResult r = get_slot(session, info, ACT_BOOLEAN, &slot);
    if (r) return r;
    if (!state || state->type != XR_TYPE_ACTION_STATE_BOOLEAN) return XR_ERROR_VALIDATION_FAILURE;
    state->currentState = slot->value > 0.5f;
    state->changedSinceLastSync = (XrBool32)slot->changed;
    state->lastChangeTime = slot->last_change;
    state->isActive = (XrBool32)slot->active;
    return XR_SUCCESS;
}

API(GetActionStateFloat, (XrSession session, const XrActionStateGetInfo *info, XrActionStateFloat *state),
    (session, info, state)) {
    const struct slot *slot;
    XrResult r = get_slot(session, info, ACT_FLOAT, &slot);
    if (r) return r;
    if (!state || state->type != XR_TYPE_ACTION_STATE_FLOAT) return XR_ERROR_VALIDATION_FAILURE;
    state->currentState = slot->value;
    state->changedSinceLastSync = (XrBool32)slot->changed;
    state->lastChangeTime = slot->last_change;
    state->isActive = (XrBool32)slot->active;
    return XR_SUCCESS;
}

API(GetActionStateVector2f, (XrSession session, const XrActionStateGetInfo *info, XrActionStateVector2f *state),
    (session, info, state)) {
    const struct slot *slot;
    XrResult r = get_slot(session, info, ACT_VECTOR2F, &slot);
    if (r) return r;
    if (!state || state->type != XR_TYPE_ACTION_STATE_VECTOR2F) return XR_ERROR_VALIDATION_FAILURE;
    state->currentState.x = state->currentState.y = 0; /* thumbsticks are never scripted */
    state->changedSinceLastSync = 0;
    state->lastChangeTime = slot->last_change;
    state->isActive = (XrBool32)slot->active;
    return XR_SUCCESS;
}

API(GetActionStatePose, (XrSession session, const XrActionStateGetInfo *info, XrActionStatePose *state),
    (session, info, state)) {
    const struct slot *slot;
    XrResult r = get_slot(session, info, ACT_POSE, &slot);
    if (r) return r;
    if (!state || state->type != XR_TYPE_ACTION_STATE_POSE) return XR_ERROR_VALIDATION_FAILURE;
    state->isActive = (XrBool32)slot->active;
    return XR_SUCCESS;
}

/* Haptics are accepted and ignored. */
static XrResult haptic_action(XrSession session, const XrHapticActionInfo *info) {
    const struct slot *slot;
    XrActionStateGetInfo get = {XR_TYPE_ACTION_STATE_GET_INFO, NULL, info ? info->action : NULL, info ? info->subactionPath : 0};
    if (!info || info->type != XR_TYPE_HAPTIC_ACTION_INFO) return XR_ERROR_VALIDATION_FAILURE;
    XrResult r = get_slot(session, &get, ACT_VIBRATION, &slot);
    if (r) return r;
    return ((struct XrSession_T *)session)->state == ST_FOCUSED ? XR_SUCCESS : XR_SESSION_NOT_FOCUSED;
}

API(ApplyHapticFeedback, (XrSession session, const XrHapticActionInfo *info, const XrBaseInStructure *haptic),
    (session, info, haptic)) {
    if (!haptic || haptic->type != XR_TYPE_HAPTIC_VIBRATION) return XR_ERROR_VALIDATION_FAILURE;
    return haptic_action(session, info);
}

API(StopHapticFeedback, (XrSession session, const XrHapticActionInfo *info), (session, info)) {
    return haptic_action(session, info);
}

API(EnumerateBoundSourcesForAction,
    (XrSession session, const XrBoundSourcesForActionEnumerateInfo *info, uint32_t capacity, uint32_t *count, XrPath *sources),
    (session, info, capacity, count, sources)) {
    struct XrSession_T *s;
    XrResult r = check_session(session, &s);
    if (r) return r;
    if (!info || info->type != XR_TYPE_BOUND_SOURCES_FOR_ACTION_ENUMERATE_INFO) return XR_ERROR_VALIDATION_FAILURE;
    struct XrAction_T *a = lookup(info->action, K_ACTION);
    if (!a) return XR_ERROR_HANDLE_INVALID;
    if (!action_attached(a, s)) return XR_ERROR_ACTIONSET_NOT_ATTACHED;
    uint32_t n = 0;
    for (uint32_t k = 0; k < a->binding_count; ++k) n += a->bindings[k].profile == s->profile;
    if ((r = two_call(capacity, count, n)) || capacity == 0) return r;
    n = 0;
    for (uint32_t k = 0; k < a->binding_count; ++k)
        if (a->bindings[k].profile == s->profile) sources[n++] = a->bindings[k].path;
    return XR_SUCCESS;
}

/* ------------------------------------------------------------------ destruction --- */
/* Destroys an object and everything created from it (spaces, swapchains, actions, ...). */
static void destroy_object(struct object *o) {
    struct object *child;
    while ((child = first_child(o))) destroy_object(child);
    if (o->kind == K_INSTANCE) {
        struct XrInstance_T *inst = (void *)o;
        for (uint32_t i = 0; i < inst->path_count; ++i) free(inst->paths[i]);
        free(inst->paths);
    } else if (o->kind == K_SESSION) {
        struct XrSession_T *s = (void *)o;
        drop_events(s->instance, s);
        for (struct object *p = g_live; p; p = p->next_live)
            if (p->kind == K_ACTION_SET && ((struct XrActionSet_T *)(void *)p)->session == s)
                ((struct XrActionSet_T *)(void *)p)->session = NULL;
        free(s->script);
        if (s->libgl) dlclose(s->libgl);
    } else if (o->kind == K_ACTION) {
        free(((struct XrAction_T *)(void *)o)->bindings);
    }
    unlink_object(o);
    memset(o, 0, sizeof *o);
    free(o);
}

/* ------------------------------------------------------------------ dispatch --- */
static XrResult get_instance_proc_addr(XrInstance instance, const char *name, PFN_xrVoidFunction *function) {
    enum { GLOBAL = 1, GL_EXT = 2 };
    static const struct { const char *name; PFN_xrVoidFunction fn; int flags; } table[] = {
#define E(n, f) {"xr" #n, (PFN_xrVoidFunction)rt_##n, f}
        {"xrGetInstanceProcAddr", (PFN_xrVoidFunction)get_instance_proc_addr, GLOBAL},
        E(EnumerateInstanceExtensionProperties, GLOBAL), E(CreateInstance, GLOBAL),
        E(DestroyInstance, 0), E(GetInstanceProperties, 0), E(GetSystem, 0), E(GetSystemProperties, 0),
        E(EnumerateViewConfigurations, 0), E(GetViewConfigurationProperties, 0),
        E(EnumerateViewConfigurationViews, 0), E(EnumerateEnvironmentBlendModes, 0), E(StringToPath, 0),
        E(PathToString, 0), E(PollEvent, 0), E(ResultToString, 0), E(StructureTypeToString, 0),
        E(GetOpenGLGraphicsRequirementsKHR, GL_EXT), E(CreateSession, 0), E(DestroySession, 0),
        E(BeginSession, 0), E(EndSession, 0), E(RequestExitSession, 0), E(EnumerateReferenceSpaces, 0),
        E(CreateReferenceSpace, 0), E(GetReferenceSpaceBoundsRect, 0), E(CreateActionSpace, 0),
        E(DestroySpace, 0), E(LocateSpace, 0), E(LocateViews, 0), E(EnumerateSwapchainFormats, 0),
        E(CreateSwapchain, 0), E(DestroySwapchain, 0), E(EnumerateSwapchainImages, 0),
        E(AcquireSwapchainImage, 0), E(WaitSwapchainImage, 0), E(ReleaseSwapchainImage, 0),
        E(WaitFrame, 0), E(BeginFrame, 0), E(EndFrame, 0), E(CreateActionSet, 0), E(DestroyActionSet, 0),
        E(CreateAction, 0), E(DestroyAction, 0), E(SuggestInteractionProfileBindings, 0),
        E(AttachSessionActionSets, 0), E(GetCurrentInteractionProfile, 0), E(SyncActions, 0),
        E(GetActionStateBoolean, 0), E(GetActionStateFloat, 0), E(GetActionStateVector2f, 0),
        E(GetActionStatePose, 0), E(ApplyHapticFeedback, 0), E(StopHapticFeedback, 0),
        E(EnumerateBoundSourcesForAction, 0),
#undef E
    };
    if (!name || !function) return XR_ERROR_VALIDATION_FAILURE;
    *function = NULL;
    XrInstance inst = instance ? get_instance(instance) : NULL;
    if (instance && !inst) return XR_ERROR_HANDLE_INVALID;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; ++i) {
        if (strcmp(name, table[i].name) != 0) continue;
        if (!inst && !(table[i].flags & GLOBAL)) return XR_ERROR_HANDLE_INVALID;
        if ((table[i].flags & GL_EXT) && !inst->gl_enabled) return XR_ERROR_FUNCTION_UNSUPPORTED;
        *function = table[i].fn;
        return XR_SUCCESS;
    }
    return XR_ERROR_FUNCTION_UNSUPPORTED;
}

__attribute__((visibility("default"))) XrResult xrNegotiateLoaderRuntimeInterface(
    const XrNegotiateLoaderInfo *loader, XrNegotiateRuntimeRequest *request) {
    if (!loader || !request || loader->structType != XR_LOADER_INTERFACE_STRUCT_LOADER_INFO ||
        request->structType != XR_LOADER_INTERFACE_STRUCT_RUNTIME_REQUEST ||
        loader->minInterfaceVersion > 1 || loader->maxInterfaceVersion < 1)
        return XR_ERROR_RUNTIME_FAILURE;
    request->runtimeInterfaceVersion = 1;
    request->runtimeApiVersion = XR_MAKE_VERSION(1, 0, 0);
    request->getInstanceProcAddr = get_instance_proc_addr;
    return XR_SUCCESS;
}

/* For the tests: sizeof the named ABI structure as declared here (0 if unknown). */
__attribute__((visibility("default"))) size_t surgplan_xr_test_struct_size(const char *name) {
    static const struct { const char *name; size_t size; } sizes[] = {
#define S(t) {#t, sizeof(t)}
        S(XrPosef), S(XrInstanceCreateInfo), S(XrSystemProperties), S(XrViewConfigurationView),
        S(XrGraphicsBindingEGLMNDX), S(XrGraphicsBindingOpenGLXlibKHR), S(XrEventDataBuffer),
        S(XrEventDataSessionStateChanged), S(XrReferenceSpaceCreateInfo), S(XrActionSpaceCreateInfo),
        S(XrSpaceLocation), S(XrViewLocateInfo), S(XrView), S(XrSwapchainCreateInfo),
        S(XrSwapchainImageOpenGLKHR), S(XrFrameState), S(XrFrameEndInfo), S(XrCompositionLayerProjectionView),
        S(XrCompositionLayerProjection), S(XrCompositionLayerQuad), S(XrActionSetCreateInfo),
        S(XrActionCreateInfo), S(XrInteractionProfileSuggestedBinding), S(XrActionsSyncInfo),
        S(XrActionStateBoolean), S(XrActionStateFloat), S(XrActionStateVector2f), S(XrActionStatePose),
        S(XrSystemGraphicsProperties), S(XrGraphicsRequirementsOpenGLKHR), S(XrSwapchainImageWaitInfo),
        S(XrHapticActionInfo), S(XrBoundSourcesForActionEnumerateInfo), S(XrInteractionProfileState),
#undef S
    };
    for (size_t i = 0; name && i < sizeof sizes / sizeof sizes[0]; ++i)
        if (strcmp(sizes[i].name, name) == 0) return sizes[i].size;
    return 0;
}
